// Where the rows of one load keep their tokens: Int32Array views into a few
// large ArrayBuffers, not a number[] (8 bytes an element on the V8 heap,
// which the training child's heap limit bounds) nor one small buffer per row
// (each ArrayBuffer costs about 190 bytes of heap and a malloc of its own:
// at 12-token rows that is 49 bytes a token, views 34; measured in
// bench/results/data.md, "memory per token").
//
// Chunks grow from 256 KiB to 4 MiB, doubling, so a small load holds little
// and a large one a buffer per 1M ints (a 100M-token packed load: some 400
// buffers); the last chunk's unused tail, at most 4 MiB, is all a load holds
// beyond its tokens (16 MiB chunks left up to 16 MiB, twice a 20 MiB load's
// tokens). A row that does not fit in what is left of a chunk starts the next
// one (the tail left behind is shorter than the row), and a row longer than a
// chunk gets a buffer of its own.
// The views are shared with nothing else: the loader writes them once and no
// reader writes into an example's arrays.

const FIRST_CHUNK_INTS = 1 << 16;
const LARGEST_CHUNK_INTS = 1 << 20;

export class Int32Arena {
  private chunk = new Int32Array(0);
  private used = 0;
  private nextChunkInts = FIRST_CHUNK_INTS;

  /** A zeroed view of `length` ints. */
  take(length: number): Int32Array {
    if (this.used + length > this.chunk.length) {
      if (length > LARGEST_CHUNK_INTS) return new Int32Array(length);
      while (this.nextChunkInts < length) this.nextChunkInts *= 2;
      this.chunk = new Int32Array(this.nextChunkInts);
      this.used = 0;
      this.nextChunkInts = Math.min(this.nextChunkInts * 2, LARGEST_CHUNK_INTS);
    }
    const view = this.chunk.subarray(this.used, this.used + length);
    this.used += length;
    return view;
  }

  /**
   * `values` copied into a view. Every value must already be a 32-bit
   * integer (the loaders check ids against the vocabulary first): an
   * Int32Array would wrap anything else silently, so that is an error here.
   */
  copy(values: ArrayLike<number>): Int32Array {
    const view = this.take(values.length);
    if (values instanceof Int32Array) {
      view.set(values);
      return view;
    }
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if ((v | 0) !== v) throw new Error(`internal: token value ${v} at ${i} is not a 32-bit integer`);
      view[i] = v;
    }
    return view;
  }
}
