// Prints, for each MP4 named on the command line, "FILE<TAB>CODEC" of its
// first video track as GPAC's mp4box.js computes it from the sample entry:
// the reference hlsd's CODECS strings are tested against (transcoder/probe).
import { readFileSync } from "node:fs";
import { createFile } from "mp4box";

for (const path of process.argv.slice(2)) {
  const file = createFile();
  let codec = "";
  file.onReady = (info) => {
    codec = info.videoTracks[0]?.codec ?? "";
  };
  file.onError = (e) => {
    throw new Error(`${path}: ${e}`);
  };
  const b = readFileSync(path);
  const buf = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  buf.fileStart = 0;
  file.appendBuffer(buf);
  file.flush();
  console.log(`${path}\t${codec}`);
}
