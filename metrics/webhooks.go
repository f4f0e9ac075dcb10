package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// WebhookAttempt counts one webhook delivery attempt in passkey_webhook_attempts_total by outcome
// ("succeeded", "retry", "failed", "gone", "abandoned"); it implements webhooks.Observer.
func (m *Metrics) WebhookAttempt(outcome string) {
	m.webhookOnce.Do(func() {
		m.webhookAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "passkey_webhook_attempts_total",
			Help: "Webhook delivery attempts by outcome: succeeded (2xx), retry (failed, tried again later), failed (the last attempt failed), gone (410: endpoint disabled), abandoned (endpoint disabled or deleted meanwhile).",
		}, []string{"outcome"})
		_ = m.reg.Register(m.webhookAttempts)
	})
	m.webhookAttempts.WithLabelValues(outcome).Inc()
}

// WebhookQueueStats is what RegisterWebhookQueue reads at each scrape.
type WebhookQueueStats struct {
	Pending       int
	OldestPending time.Time // zero when none
}

// RegisterWebhookQueue exports passkey_webhook_queue_depth (pending deliveries) and
// passkey_webhook_oldest_pending_seconds (age of the oldest), read by stats at each scrape with a
// 2 s deadline; a failed read exports nothing for that scrape.
func (m *Metrics) RegisterWebhookQueue(stats func(ctx context.Context) (WebhookQueueStats, error)) error {
	c := &webhookQueueCollector{stats: stats,
		depth:  prometheus.NewDesc("passkey_webhook_queue_depth", "Webhook deliveries pending (queued or waiting for a retry).", nil, nil),
		oldest: prometheus.NewDesc("passkey_webhook_oldest_pending_seconds", "Age of the oldest pending webhook delivery; 0 when none.", nil, nil)}
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("register webhook queue stats: %w", err)
	}
	return nil
}

type webhookQueueCollector struct {
	stats         func(ctx context.Context) (WebhookQueueStats, error)
	depth, oldest *prometheus.Desc
}

func (c *webhookQueueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.depth; ch <- c.oldest }

func (c *webhookQueueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.stats(ctx)
	if err != nil {
		return
	}
	age := 0.0
	if !st.OldestPending.IsZero() {
		age = max(0, time.Since(st.OldestPending).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(st.Pending))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
}
