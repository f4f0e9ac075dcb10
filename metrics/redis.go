package metrics

import "github.com/prometheus/client_golang/prometheus"

// redisPoolCollector reads a Redis pool's statistics at scrape time.
type redisPoolCollector struct {
	stats                         func() RedisPoolStats
	hits, misses, timeouts, stale *prometheus.Desc
	totalConns, idleConns         *prometheus.Desc
}

func newRedisPoolCollector(name string, stats func() RedisPoolStats) *redisPoolCollector {
	desc := func(metric, help string) *prometheus.Desc {
		return prometheus.NewDesc("passkey_redis_pool_"+metric, help, nil, prometheus.Labels{"name": name})
	}
	return &redisPoolCollector{
		stats:      stats,
		hits:       desc("hits_total", "Times a free connection was found in the pool."),
		misses:     desc("misses_total", "Times a free connection was not found in the pool."),
		timeouts:   desc("timeouts_total", "Times a wait for a pool connection timed out."),
		stale:      desc("stale_connections_total", "Stale connections removed from the pool."),
		totalConns: desc("connections", "Connections in the pool."),
		idleConns:  desc("idle_connections", "Idle connections in the pool."),
	}
}

// Describe implements prometheus.Collector.
func (c *redisPoolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.hits
	ch <- c.misses
	ch <- c.timeouts
	ch <- c.stale
	ch <- c.totalConns
	ch <- c.idleConns
}

// Collect implements prometheus.Collector.
func (c *redisPoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(c.timeouts, prometheus.CounterValue, float64(s.Timeouts))
	ch <- prometheus.MustNewConstMetric(c.stale, prometheus.CounterValue, float64(s.Stale))
	ch <- prometheus.MustNewConstMetric(c.totalConns, prometheus.GaugeValue, float64(s.Total))
	ch <- prometheus.MustNewConstMetric(c.idleConns, prometheus.GaugeValue, float64(s.Idle))
}
