// diff() against the reference it stands in for: fast-json-patch's compare(), for any pair of JSON
// documents (and pairs made by editing one, the engine's case: shared subtrees, a few changes).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import jsonPatch from 'fast-json-patch';
import { diff } from '../../src/inject/patch.ts';

/** As JSON.parse makes it (fast-check's dictionaries have no prototype). */
const plain = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T> => arb.map((v) => JSON.parse(JSON.stringify(v)) as T);
const json = plain(fc.jsonValue({ maxDepth: 4 }));
const doc = plain(fc.oneof(fc.dictionary(fc.string({ maxLength: 4 }), json, { maxKeys: 6 }), fc.array(json, { maxLength: 6 })));

test('diff() makes the patch fast-json-patch compare() makes, for any two JSON documents', () => {
  fc.assert(fc.property(doc, doc, (before, after) => {
    assert.deepEqual(diff(before, after), jsonPatch.compare(before, after));
  }), { numRuns: 2000 });
});

test('diff() of a document and an edited copy sharing its subtrees: compare()\'s patch, which applied gives the edited copy', () => {
  const keys = fc.constantFrom('a', 'b', 'c/d', 'e~f', '0', '1');
  fc.assert(fc.property(plain(fc.dictionary(keys, doc, { maxKeys: 5 })), keys, json, fc.boolean(), (before, key, value, remove) => {
    const after: Record<string, unknown> = { ...before };
    const child = after[key];
    if (remove) delete after[key];
    else if (Array.isArray(child)) after[key] = [...child.slice(1), value];
    else if (typeof child === 'object' && child !== null) after[key] = { ...child, [key]: value };
    else after[key] = value;
    const patch = diff(before, after);
    assert.deepEqual(patch, jsonPatch.compare(before, after));
    assert.deepEqual(jsonPatch.applyPatch(structuredClone(before), structuredClone(patch)).newDocument, after);
  }), { numRuns: 2000 });
});

test('diff() shares the values it adds with the new document (no copy)', () => {
  const container = { name: 'promux', args: ['-m', 'app:8080'] };
  const patch = diff({ spec: { containers: [] } }, { spec: { containers: [container] } });
  assert.deepEqual(patch, [{ op: 'add', path: '/spec/containers/0', value: container }]);
  assert.equal((patch[0] as { value: unknown }).value, container);
});
