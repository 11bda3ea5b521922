// Targets with labels of their own (FetchedTarget.labels: `promux proxy`'s namespace and pod, and
// container where a pod's map names one) go through the same merge as the sidecar's container label.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  DROP_REASONS, DropCounter, mergeTargets, type FetchedTarget, type MergeOutput, type TargetKey,
} from '../../../src/sidecar/exposition/index.ts';
import { ACCEPT } from './accept.ts';
import { openMetricsErrors, promtoolError, readExposition, tools } from './checkers.ts';
import { mergeCase, type Case } from './generate.ts';

const TEXT = 'text/plain; version=0.0.4';

function merge(targets: FetchedTarget[], drops = new DropCounter(), containerLabel = 'container'): MergeOutput {
  return mergeTargets(targets, { containerLabel, accept: ACCEPT.text }, drops);
}

function pod(namespace: string, name: string, body: string | undefined, endpoint = '8080'): FetchedTarget {
  const key = { container: '', endpoint, labels: [['namespace', namespace], ['pod', name]] as const };
  return body === undefined
    ? { ...key, error: 'connection refused', durationSeconds: 0.2 }
    : { ...key, body: Buffer.from(body), contentType: TEXT, durationSeconds: 0.01 };
}

/** The samples of a family, as lines. */
function lines(output: MergeOutput, family: string): string[] {
  return output.body.toString().split('\n').filter((l) => l.startsWith(`${family}{`) || l.startsWith(`${family} `));
}

/** The case's targets with `labels` of their own instead of the container label. */
function labelled(c: Case, labels: (container: string) => Array<[string, string]>): FetchedTarget[] {
  return c.targets.map((t) => ({ ...t, labels: labels(t.container) }));
}

const sumDrops = (drops: DropCounter, target: TargetKey): number => DROP_REASONS.reduce((n, r) => n + drops.get(target, r), 0);

describe('targets with labels of their own', () => {
  test('each series gets the target\'s labels; existing ones become exported_<name>; promux_target_* carry them and the endpoint', () => {
    const output = merge([
      pod('shop', 'web-1', 'requests_total{code="200"} 3\nkube_pod_info{namespace="other",pod="x"} 1\n'),
      pod('shop', 'web-2', 'requests_total{code="200"} 5\n'),
      pod('pay', 'web-1', undefined),
    ]);
    assert.deepEqual(lines(output, 'requests_total'), [
      'requests_total{namespace="shop",pod="web-1",code="200"} 3',
      'requests_total{namespace="shop",pod="web-2",code="200"} 5',
    ]);
    assert.deepEqual(lines(output, 'kube_pod_info'), ['kube_pod_info{namespace="shop",pod="web-1",exported_namespace="other",exported_pod="x"} 1']);
    assert.deepEqual(lines(output, 'promux_target_up'), [
      'promux_target_up{namespace="shop",pod="web-1",endpoint="8080"} 1',
      'promux_target_up{namespace="shop",pod="web-2",endpoint="8080"} 1',
      'promux_target_up{namespace="pay",pod="web-1",endpoint="8080"} 0',
    ]);
    assert.deepEqual(output.targets.map((t) => [t.labels, t.up]), [
      [[['namespace', 'shop'], ['pod', 'web-1']], true],
      [[['namespace', 'shop'], ['pod', 'web-2']], true],
      [[['namespace', 'pay'], ['pod', 'web-1']], false],
    ]);
  });

  test('pods of the same name in two namespaces are two targets for promux_dropped_samples_total', () => {
    const drops = new DropCounter();
    const output = merge([pod('a', 'p', 'x 1\nx 1\n'), pod('b', 'p', 'x 1\n')], drops);
    assert.equal(drops.get(pod('a', 'p', undefined), 'duplicate_series'), 1);
    assert.equal(drops.get(pod('b', 'p', undefined), 'duplicate_series'), 0);
    assert.ok(lines(output, 'promux_dropped_samples_total')
      .includes('promux_dropped_samples_total{namespace="a",pod="p",endpoint="8080",reason="duplicate_series"} 1'));
  });

  test('the counters of a target that is gone end: its promux_dropped_* series are no longer served', () => {
    const drops = new DropCounter();
    merge([pod('a', 'gone', 'x 1\nx 1\n'), pod('a', 'stays', 'y 1\n')], drops);
    const after = merge([pod('a', 'stays', 'y 1\n'), pod('a', 'new', 'z 1\n')], drops);
    const dropped = lines(after, 'promux_dropped_samples_total');
    assert.ok(!dropped.some((l) => l.includes('pod="gone"')), dropped.join('\n'));
    assert.ok(dropped.some((l) => l.includes('pod="stays"')) && dropped.some((l) => l.includes('pod="new"')));
    assert.deepEqual(drops.targets().map((t) => t.labels?.[1]?.[1]), ['stays', 'new']);
  });

  test('a target whose labels include the container label: a series of its own container label keeps it as exported_container', () => {
    const target: FetchedTarget = {
      container: 'app', endpoint: '8080', labels: [['namespace', 'n'], ['pod', 'p'], ['container', 'app']],
      body: Buffer.from('a{container="inner"} 1\n'), contentType: TEXT, durationSeconds: 0,
    };
    assert.deepEqual(lines(merge([target]), 'a'), ['a{namespace="n",pod="p",container="app",exported_container="inner"} 1']);
  });

  test('property: one label of a target\'s own is the container label exactly: the same bytes, outcomes and drops', () => {
    fc.assert(fc.property(mergeCase(), (c) => {
      const drops = new DropCounter();
      const plain = mergeTargets(c.targets, { containerLabel: c.label, accept: c.accept }, drops);
      const ownDrops = new DropCounter();
      const own = mergeTargets(labelled(c, (container) => [[c.label, container]]), { containerLabel: 'unused', accept: c.accept }, ownDrops);
      assert.equal(own.body.toString(), plain.body.toString());
      assert.equal(own.contentType, plain.contentType);
      assert.deepEqual(own.targets.map(({ labels: _, ...rest }) => rest), plain.targets);
      for (const t of c.targets) {
        assert.equal(sumDrops(ownDrops, { ...t, labels: [[c.label, t.container]] }), sumDrops(drops, t));
      }
    }), { numRuns: 150 });
  });

  test('property: two labels of a target\'s own are on every series once, with the target\'s values; the answer passes the strict parser of its format', (t) => {
    const checkers = tools(t);
    const seed = Date.now();
    const outputs: MergeOutput[] = [];
    fc.assert(fc.property(mergeCase(), (c) => {
      // `path` and `container` are among the label names the generated bodies use: both get renamed.
      const targets = labelled(c, (container) => [['path', `ns-${container}`], ['container', container]]);
      const output = mergeTargets(targets, { containerLabel: 'unused', accept: c.accept }, new DropCounter());
      for (const family of readExposition(output.body.toString(), output.format)) {
        for (const s of family.samples) {
          const path = s.labels.filter(([n]) => n === 'path');
          const container = s.labels.filter(([n]) => n === 'container');
          assert.equal(path.length, 1, `${family.name}: one path label`);
          assert.equal(container.length, 1, `${family.name}: one container label`);
          assert.equal(path[0]![1], `ns-${container[0]![1]}`);
          assert.ok(c.targets.some((x) => x.container === container[0]![1]));
        }
      }
      outputs.push(output);
    }), { numRuns: 150, seed });
    if (checkers === undefined) return;
    const plain = outputs.filter((o) => !readExposition(o.body.toString(), o.format).some((f) => f.quoted || f.samples.some((s) => s.quoted)));
    const openMetrics = plain.filter((o) => o.format === 'openmetrics');
    assert.ok(openMetrics.length > 10 && plain.length - openMetrics.length > 10, `answers of each format: ${openMetrics.length}, ${plain.length - openMetrics.length}`);
    openMetricsErrors(checkers.python, openMetrics.map((o) => o.body.toString())).forEach((error, i) => {
      assert.equal(error, undefined, `seed ${seed}\n${openMetrics[i]!.body}`);
    });
    for (const o of plain.filter((x) => x.format === 'text').slice(0, 30)) {
      assert.equal(promtoolError(checkers.promtool, o.body), undefined, `seed ${seed}\n${o.body}`);
    }
  });
});
