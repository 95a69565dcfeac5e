// The generator behind test fixtures (tiny model weights, random adapters):
// a plain splitmix32 stream with Box-Muller normals. Its stream is frozen:
// the PyTorch reference fixtures (fixtures/pytorch/) were computed from tiny
// models built with it, and the test checks their weight hashes. Code that is
// not test data uses electron/random/prng.ts.
import { splitmix32 } from '../random/prng.js';

export class FixtureRng {
  private readonly state: { s: number };

  constructor(seed: number) {
    this.state = { s: (seed ^ 0x5bd1e995) | 0 };
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    return splitmix32(this.state);
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Standard normal (Box-Muller; one value per call for simplicity). */
  normal(): number {
    const u1 = 1 - this.uniform(); // (0, 1]: log is finite
    const u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** `count` normal values with the given mean and standard deviation, as float32. */
  normalArray(count: number, std: number, mean = 0): Float32Array {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = mean + std * this.normal();
    return out;
  }
}
