import { describe, expect, it } from 'vitest'
import { Counter, Gauge, Histogram, Registry } from './prometheus.js'

describe('Prometheus text format', () => {
  it('renders counters, gauges and cumulative histograms with escaped labels', () => {
    const registry = new Registry()
    const counter = registry.register(new Counter('x_total', 'Things.', ['bot', 'reason']))
    const gauge = registry.register(new Gauge('y', 'Level.'))
    const histogram = registry.register(new Histogram('z_seconds', 'Time.', ['bot'], [0.1, 1]))
    counter.labels('a"b\\c\nd', 'ok').inc(2)
    gauge.labels().set(5)
    const child = histogram.labels('b')
    for (const value of [0.05, 0.1, 0.5, 3]) child.observe(value)
    expect(registry.render()).toBe(
      [
        '# HELP x_total Things.',
        '# TYPE x_total counter',
        'x_total{bot="a\\"b\\\\c\\nd",reason="ok"} 2',
        '# HELP y Level.',
        '# TYPE y gauge',
        'y 5',
        '# HELP z_seconds Time.',
        '# TYPE z_seconds histogram',
        'z_seconds_bucket{bot="b",le="0.1"} 2',
        'z_seconds_bucket{bot="b",le="1"} 3',
        'z_seconds_bucket{bot="b",le="+Inf"} 4',
        'z_seconds_sum{bot="b"} 3.65',
        'z_seconds_count{bot="b"} 4',
        '',
      ].join('\n'),
    )
  })

  it('returns the same child for the same labels', () => {
    const counter = new Counter('c', 'h', ['a'])
    counter.labels('1').inc()
    counter.labels('1').inc()
    expect(counter.labels('1').value).toBe(2)
  })
})
