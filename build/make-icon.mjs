// Draws the app icon (an original design: the frozen weight matrix W as a
// large square, and beside it the two thin low-rank matrices B and A a LoRA
// adapter trains) and writes it as PNGs, with no image library: pixels are
// computed with 4x4 supersampling and encoded with zlib.
//
//   node build/make-icon.mjs      -> build/icons/{512x512,256x256}.png, build/icon.png
import { writeFileSync, mkdirSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

// ---- PNG encoding (RGBA, 8 bit, no interlace)
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
function encodePng(size, rgba) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header[8] = 8; // bit depth
  header[9] = 6; // RGBA
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0; // filter: none
    rgba.copy(raw, y * (size * 4 + 1) + 1, y * size * 4, (y + 1) * size * 4);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// ---- the drawing, in unit coordinates (0..1)
const insideRoundedRect = (x, y, x0, y0, x1, y1, r) => {
  if (x < x0 || x > x1 || y < y0 || y > y1) return false;
  const cx = Math.min(Math.max(x, x0 + r), x1 - r);
  const cy = Math.min(Math.max(y, y0 + r), y1 - r);
  return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
};
const mix = (a, b, t) => a.map((v, i) => v + (b[i] - v) * t);

const TOP = [49, 46, 129]; // indigo
const BOTTOM = [13, 148, 136]; // teal
const WHITE = [255, 255, 255];
const W_TINT = [224, 231, 255];
const ACCENT = [251, 191, 36]; // amber: the trained part

/** Colour and alpha of one sample point. */
function sample(x, y) {
  if (!insideRoundedRect(x, y, 0.04, 0.04, 0.96, 0.96, 0.2)) return null;
  let c = mix(TOP, BOTTOM, (x + y) / 2);
  // W: a large frozen square (outline and faint fill)
  if (insideRoundedRect(x, y, 0.16, 0.22, 0.6, 0.66, 0.04)) {
    c = insideRoundedRect(x, y, 0.19, 0.25, 0.57, 0.63, 0.02) ? mix(c, W_TINT, 0.22) : WHITE;
  }
  // B (tall, narrow) and A (wide, short): the adapter, in the accent colour
  if (insideRoundedRect(x, y, 0.68, 0.22, 0.76, 0.66, 0.03)) c = ACCENT;
  if (insideRoundedRect(x, y, 0.16, 0.74, 0.6, 0.82, 0.03)) c = ACCENT;
  // the plus between them
  if ((Math.abs(x - 0.72) < 0.012 && Math.abs(y - 0.78) < 0.045) || (Math.abs(y - 0.78) < 0.012 && Math.abs(x - 0.72) < 0.045)) c = WHITE;
  return c;
}

function render(size) {
  const SS = 4;
  const rgba = Buffer.alloc(size * size * 4);
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let r = 0, g = 0, b = 0, a = 0;
      for (let sy = 0; sy < SS; sy++) {
        for (let sx = 0; sx < SS; sx++) {
          const c = sample((px + (sx + 0.5) / SS) / size, (py + (sy + 0.5) / SS) / size);
          if (!c) continue;
          r += c[0]; g += c[1]; b += c[2]; a += 1;
        }
      }
      const o = (py * size + px) * 4;
      if (a > 0) {
        rgba[o] = Math.round(r / a);
        rgba[o + 1] = Math.round(g / a);
        rgba[o + 2] = Math.round(b / a);
        rgba[o + 3] = Math.round((255 * a) / (SS * SS));
      }
    }
  }
  return encodePng(size, rgba);
}

mkdirSync(join(here, 'icons'), { recursive: true });
const big = render(512);
writeFileSync(join(here, 'icons', '512x512.png'), big);
writeFileSync(join(here, 'icons', '256x256.png'), render(256));
writeFileSync(join(here, 'icon.png'), big); // mac/win builds convert this one
console.log('wrote build/icons/512x512.png, build/icons/256x256.png, build/icon.png');
