// Why a scrape's last objects are kept: on demand, the sidecar runs a full garbage collection once
// a scrape is over and none follows (collector.ts). V8 then also frees the hidden class of every
// kind of object no longer alive, and drops the optimized code that checks for it ("embedded weak
// objects cleared" in --trace-deopt): each scrape after such a collection compiled the scanner and
// the writer again, at 2-3 times the CPU. A class whose last instance is kept keeps its hidden class.

const lastInstances = new Map<unknown, object>();

/**
 * Keeps `instance` referenced until the next instance of its class replaces it. Called from the
 * constructor of each class whose methods are the hot code of a scrape (the text scanner and parser,
 * the answer's writer); each lets go of its buffers once its work is over, so keeping it costs only
 * its small objects. Classes whose code the collection was not seen to drop are not kept.
 */
export function keepLastInstance(instance: object): void {
  lastInstances.set(instance.constructor, instance);
}
