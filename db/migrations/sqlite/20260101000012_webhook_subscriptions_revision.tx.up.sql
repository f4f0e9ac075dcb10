-- The revision of the webhook subscriptions (issue 15): one row, counted up in the transaction of every
-- change of which endpoints subscribe to what (an endpoint created, changed, deleted or disabled; a
-- tenant deleted with its endpoints). Each instance's in-memory index (webhooks.Index) reads it every
-- refresh interval and reads the endpoints again only when it moved, instead of reading every enabled
-- endpoint of every tenant each time.
CREATE TABLE webhook_subscriptions_revision (
    id       integer PRIMARY KEY CHECK (id = 1),
    revision integer NOT NULL
);
--bun:split

INSERT INTO webhook_subscriptions_revision (id, revision) VALUES (1, 0);
