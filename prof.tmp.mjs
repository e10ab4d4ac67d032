import { createReadStream, readFileSync } from 'node:fs';
import { CsvRecordReader } from './dist/csvRecordReader.js';
import { RowEncoder } from './dist/rowEncoder.js';
import { parseHeader } from './dist/header.js';
const file = process.argv[2];
const layout = parseHeader(readFileSync(file).subarray(0, 65536), false);
for (let k = 0; k < 2; k++) {
  const t0 = performance.now();
  const reader = new CsvRecordReader({ columns: layout.columns, firstLineNo: 2, eol: 'LF', maxRecordBytes: 1 << 24, checkEncoding: true });
  let out = 0;
  const enc = new RowEncoder(layout, (b) => { out += b.length; });
  let first = true;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    let c = chunk; if (first) { c = chunk.subarray(layout.dataOffset); first = false; }
    reader.push(c, enc);
  }
  reader.end(enc); enc.flush();
  console.log((performance.now() - t0).toFixed(0), 'ms', reader.rows, out);
}
