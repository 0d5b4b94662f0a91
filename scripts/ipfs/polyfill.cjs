// Node 20 lacks Promise.withResolvers (added in Node 22), which js-ipfs 0.66 dependencies call.
// Loaded with `node --require` before the js-ipfs CLI; a no-op where the runtime has it.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve
    let reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
