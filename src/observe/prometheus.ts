/**
 * @module
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Label children are created once and kept by the caller, so counting on the request path is a
 * property increment, not a lookup by label strings.
 */

type Labels = readonly string[]

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

function labelText(names: Labels, values: Labels, extra = ''): string {
  const pairs = names.map((name, i) => `${name}="${escapeLabel(values[i] ?? '')}"`)
  if (extra !== '') pairs.push(extra)
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`
}

abstract class Metric<Child> {
  readonly name: string
  readonly help: string
  readonly labelNames: Labels
  protected readonly children = new Map<string, { values: Labels; child: Child }>()

  constructor(name: string, help: string, labelNames: Labels = []) {
    this.name = name
    this.help = help
    this.labelNames = labelNames
  }

  protected abstract create(): Child
  abstract readonly type: 'counter' | 'gauge' | 'histogram'

  /** The child for these label values, created on first use. */
  labels(...values: string[]): Child {
    const key = values.join('\u0001')
    let entry = this.children.get(key)
    if (entry === undefined) {
      entry = { values, child: this.create() }
      this.children.set(key, entry)
    }
    return entry.child
  }

  protected abstract lines(values: Labels, child: Child): string[]

  render(): string {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`]
    for (const { values, child } of this.children.values()) out.push(...this.lines(values, child))
    return out.join('\n')
  }
}

export class CounterChild {
  value = 0
  inc(by = 1): void {
    this.value += by
  }
}

export class Counter extends Metric<CounterChild> {
  readonly type = 'counter'
  protected create(): CounterChild {
    return new CounterChild()
  }
  protected lines(values: Labels, child: CounterChild): string[] {
    return [`${this.name}${labelText(this.labelNames, values)} ${child.value}`]
  }
}

export class GaugeChild {
  value = 0
  set(value: number): void {
    this.value = value
  }
  inc(by = 1): void {
    this.value += by
  }
  dec(by = 1): void {
    this.value -= by
  }
}

export class Gauge extends Metric<GaugeChild> {
  readonly type = 'gauge'
  protected create(): GaugeChild {
    return new GaugeChild()
  }
  protected lines(values: Labels, child: GaugeChild): string[] {
    return [`${this.name}${labelText(this.labelNames, values)} ${child.value}`]
  }
}

export class HistogramChild {
  readonly #bounds: readonly number[]
  readonly counts: number[]
  sum = 0
  count = 0

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds
    this.counts = new Array<number>(bounds.length).fill(0)
  }

  observe(value: number): void {
    this.sum += value
    this.count++
    const bounds = this.#bounds
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        this.counts[i] = (this.counts[i] as number) + 1
        return
      }
    }
  }
}

export class Histogram extends Metric<HistogramChild> {
  readonly type = 'histogram'
  readonly bounds: readonly number[]

  constructor(name: string, help: string, labelNames: Labels, bounds: readonly number[]) {
    super(name, help, labelNames)
    this.bounds = bounds
  }

  protected create(): HistogramChild {
    return new HistogramChild(this.bounds)
  }

  protected lines(values: Labels, child: HistogramChild): string[] {
    const out: string[] = []
    let cumulative = 0
    this.bounds.forEach((bound, i) => {
      cumulative += child.counts[i] as number
      out.push(`${this.name}_bucket${labelText(this.labelNames, values, `le="${bound}"`)} ${cumulative}`)
    })
    out.push(`${this.name}_bucket${labelText(this.labelNames, values, 'le="+Inf"')} ${child.count}`)
    out.push(`${this.name}_sum${labelText(this.labelNames, values)} ${child.sum}`)
    out.push(`${this.name}_count${labelText(this.labelNames, values)} ${child.count}`)
    return out
  }
}

/** Metrics in registration order; `collect` hooks refresh values that are read at scrape time. */
export class Registry {
  readonly #metrics: { render(): string }[] = []
  readonly #collectors: (() => void)[] = []

  register<M extends { render(): string }>(metric: M): M {
    this.#metrics.push(metric)
    return metric
  }

  onCollect(collector: () => void): void {
    this.#collectors.push(collector)
  }

  render(): string {
    for (const collect of this.#collectors) collect()
    return `${this.#metrics.map((metric) => metric.render()).join('\n')}\n`
  }
}
