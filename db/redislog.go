package db

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// SetRedisLogger sends what go-redis logs (reconnects, pool and protocol trouble) to log as warnings
// with the attribute component=redis, instead of plain lines on stderr that break a JSON log. It sets
// go-redis's process-wide logger, so call it once, at startup.
func SetRedisLogger(log *slog.Logger) {
	redis.SetLogger(redisLogger{log: log.With("component", "redis")})
}

// redisLogger adapts go-redis's Printf-style logger to slog.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, args ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	l.log.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, args...)))
}
