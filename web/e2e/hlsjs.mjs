// Browser checks for hlsd, run by e2e.go: hls.js in Debian's Chromium plays
// each file of a running server, seeks, switches quality and audio track,
// and the web page is used once the way a person would. It prints one JSON
// document on stdout (the results); everything else goes to stderr.
//
//   node hlsjs.mjs config.json
//
// config: {"base": "http://127.0.0.1:port", "chromium": "/usr/bin/chromium",
//          "artifacts": "dir for screenshots",
//          "files": [{"name": "h264.mp4", "id": "<media id>"}],
//          "page": {"folder": "Shows", "name": "h264.mp4"}}   (optional)
//
// With "watch": {"seconds", "height", "hookFrag", "hook"}, each file is
// played straight on at one rung instead, and the hook URL is fetched when
// fragment hookFrag starts loading (see Watch in e2e.go).
//
// With "player": "shaka", "videojs" or "hls.js", each file is played instead
// in that player, loaded from this directory's npm packages (hls.js from the
// server), with a shorter scenario: start, seeks, play on, rewind. A file
// may carry "container": "ts" for the server's MPEG-TS variant.
//
// With "activity", "codecs", "downloadMenu" or "downloads" (see Config in
// e2e.go), the web player's own page is checked: the Activity view, what
// it plays and loads, its Download menu.
//
// Judging is left to the caller: each result lists the steps that ran,
// their times and every player error seen, fatal or not.
import { readFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

const cfg = JSON.parse(await readFile(process.argv[2], 'utf8'));
const log = (...a) => console.error('[e2e]', ...a);

// Flags that work on these machines: the network is closed, so anything
// that phones home only produces refused connections and delays.
const browser = await chromium.launch({
  executablePath: cfg.chromium || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
  ],
});

const STEP_TIMEOUT = cfg.stepTimeoutMs || 30000;

// harness runs inside the page: one hls.js instance on a bare <video>,
// recording errors, switches and the playback position every 50 ms, so
// jumps and stalls can be judged afterwards.
function harness(master, debug, audible, watch) {
  const video = document.createElement('video');
  // Muted media feeds silence to Web Audio; pitch checks need the sound.
  video.muted = !audible;
  video.playsInline = true;
  video.style.width = '640px';
  document.body.append(video);
  const T = { errors: [], switches: [], samples: [], epoch: 0, video };
  window.T = T;
  // A short forward buffer, so that seeks in 20 s clips leave what is
  // buffered and measure the server, not the player's memory.
  // (hls.js buffers min(maxMaxBufferLength, max(maxBufferLength, what
  // maxBufferSize holds at the level's bitrate)) seconds ahead.)
  // Progressive loading, the start level from the master, and a restart of
  // loading on seeks out of the buffer, as the web player does (app.js).
  function restartOutOfBuffer(hls, video) {
    const t = video.currentTime;
    const b = video.buffered;
    for (let i = 0; i < b.length; i++) if (b.start(i) <= t && t < b.end(i)) return;
    hls.stopLoad();
    hls.startLoad(t);
  }
  const hls = new Hls({ debug: !!debug, maxBufferLength: 4, maxMaxBufferLength: 4, progressive: true, autoStartLoad: false });
  video.addEventListener('seeking', () => restartOutOfBuffer(hls, video));
  T.hls = hls;
  hls.on(Hls.Events.ERROR, (_, d) => {
    T.errors.push({
      at: video.currentTime, fatal: !!d.fatal, type: d.type, details: d.details,
      url: (d.frag && d.frag.url) || d.url || (d.context && d.context.url) || '',
      code: d.response && d.response.code, reason: d.reason || (d.error && d.error.message) || '',
    });
  });
  hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => T.switches.push({ kind: 'level', id: d.level, at: performance.now() }));
  hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, (_, d) => T.switches.push({ kind: 'audio', id: d.id, at: performance.now() }));
  setInterval(() => {
    if (!video.paused && !video.seeking) T.samples.push([performance.now(), video.currentTime, T.epoch]);
  }, 50);
  // pitch samples the decoded audio for 300 ms and returns the strongest
  // frequency, in Hz.
  T.pitch = async () => {
    if (!T.analyser) {
      const ctx = new AudioContext();
      await ctx.resume();
      T.analyser = ctx.createAnalyser();
      T.analyser.fftSize = 8192;
      ctx.createMediaElementSource(video).connect(T.analyser);
      T.analyser.connect(ctx.destination);
    }
    const a = T.analyser;
    const sum = new Float32Array(a.frequencyBinCount).fill(0);
    const bins = new Float32Array(a.frequencyBinCount);
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 50));
      a.getFloatFrequencyData(bins);
      for (let j = 0; j < bins.length; j++) sum[j] += bins[j];
    }
    let best = 1;
    for (let j = 1; j < sum.length; j++) if (sum[j] > sum[best]) best = j;
    return (best * a.context.sampleRate) / a.fftSize;
  };
  T.t0 = performance.now();
  hls.loadSource(master);
  hls.attachMedia(video);
  // A watch's hook is called the moment the player asks for fragment
  // hookFrag, so that what the caller does hits a load in flight.
  hls.on(Hls.Events.FRAG_LOADING, (_, d) => {
    if (watch && watch.hook && !T.hooked && d.frag.type === 'main' && d.frag.sn === watch.hookFrag) {
      T.hooked = { at: video.currentTime, ahead: video.buffered.length ? video.buffered.end(video.buffered.length - 1) - video.currentTime : 0 };
      fetch(watch.hook, { mode: 'no-cors' }).catch((e) => T.errors.push({ fatal: true, details: 'hook: ' + e.message }));
    }
  });
  hls.on(Hls.Events.MANIFEST_PARSED, (_, d) => {
    hls.startLevel = d.firstLevel;
    const held = watch && watch.height ? d.levels.findIndex((l) => l.height === watch.height) : -1;
    if (held >= 0) {
      hls.startLevel = held;
      hls.loadLevel = held; // manual: ABR stays off
    }
    hls.startLoad();
    video.play().catch((e) => T.errors.push({ fatal: true, details: 'play() refused: ' + e.message }));
  });
}

// waitPlaying resolves with the milliseconds since T.mark once playback has
// moved past `from` by `by` seconds with nothing pending.
async function waitPlaying(page, from, by, what) {
  const h = await page.waitForFunction(([from, by]) => {
    const v = T.video;
    if (T.errors.some((e) => e.fatal)) return { fatal: true };
    if (v.paused || v.seeking || v.readyState < 3 || v.currentTime < from + by) return false;
    return { ms: performance.now() - T.mark, pos: v.currentTime };
  }, [from, by], { timeout: STEP_TIMEOUT, polling: 20 }).catch((e) => {
    throw new Error(`${what}: playback did not reach ${(from + by).toFixed(2)} s: ${e.message.split('\n')[0]}`);
  });
  const r = await h.jsonValue();
  if (r.fatal) throw new Error(`${what}: fatal hls.js error`);
  // Waiting for some playback proves it resumed; the time it took to
  // resume is the wait minus what was played meanwhile.
  r.resumeMs = Math.max(0, r.ms - (r.pos - from) * 1000);
  return r;
}

async function seek(page, frac, what) {
  const { target, buffered } = await page.evaluate((frac) => {
    T.epoch++;
    T.mark = performance.now();
    const t = T.video.duration * frac;
    const b = T.video.buffered;
    let buffered = false;
    for (let i = 0; i < b.length; i++) buffered ||= b.start(i) <= t && t < b.end(i);
    T.video.currentTime = t;
    return { target: t, buffered };
  }, frac);
  // The position right after the seek tells whether the player landed where
  // asked (a gap jump or a snap to a segment start would show here).
  const r = await waitPlaying(page, target, 0.3, what);
  const landed = await page.evaluate((ep) => {
    const s = T.samples.find((x) => x[2] === ep);
    return s ? s[1] : null;
  }, await page.evaluate(() => T.epoch));
  return { step: what, ms: Math.round(r.resumeMs), target, landed, buffered };
}

// waitSwitch resolves with the milliseconds from T.mark to hls.js reporting
// the switch (LEVEL_SWITCHED: the new rung's first segment is buffered).
async function waitSwitch(page, kind, id, what) {
  const h = await page.waitForFunction(([kind, id]) => {
    if (T.errors.some((e) => e.fatal)) return { fatal: true };
    const s = T.switches.slice(T.switchMark).find((s) => s.kind === kind && s.id === id);
    return s ? { ms: s.at - T.mark } : false;
  }, [kind, id], { timeout: STEP_TIMEOUT, polling: 20 }).catch((e) => {
    throw new Error(`${what}: no ${kind} switch to ${id}: ${e.message.split('\n')[0]}`);
  });
  const r = await h.jsonValue();
  if (r.fatal) throw new Error(`${what}: fatal hls.js error`);
  return r.ms;
}

// checkSubtitles selects the first subtitle track in hls.js and checks each
// cue shows 0.1 s after its start and not 0.1 s before: a subtitle timeline
// shifted against the video's by more than that fails.
async function checkSubtitles(page, cues) {
  const what = 'subtitles';
  const t0 = Date.now();
  const tracks = await page.evaluate(() => T.hls.subtitleTracks.map((t) => t.name));
  if (tracks.length === 0) throw new Error(`${what}: hls.js lists no subtitle track`);
  await page.evaluate(() => { T.epoch++; T.video.pause(); T.hls.subtitleDisplay = true; T.hls.subtitleTrack = 0; });
  const showing = async (at) => {
    await page.evaluate((at) => { T.epoch++; T.video.currentTime = at; }, at);
    const h = await page.waitForFunction((at) => {
      const v = T.video;
      if (v.seeking || Math.abs(v.currentTime - at) > 0.01) return false;
      const t = [...v.textTracks].find((t) => t.mode === 'showing');
      if (!t || !t.cues || t.cues.length === 0) return false;
      return { text: [...(t.activeCues || [])].map((c) => c.text).join(' | ') };
    }, at, { timeout: STEP_TIMEOUT, polling: 50 }).catch((e) => {
      throw new Error(`${what}: no cues loaded at ${at} s: ${e.message.split('\n')[0]}`);
    });
    return (await h.jsonValue()).text;
  };
  for (const c of cues) {
    const after = await showing(c.start + 0.1);
    if (!after.includes(c.text)) throw new Error(`${what}: at ${c.start + 0.1} s showing "${after}", want "${c.text}" (from ${c.start} s)`);
    const before = await showing(c.start - 0.1);
    if (before.includes(c.text)) throw new Error(`${what}: "${c.text}" shows at ${c.start - 0.1} s, before its start ${c.start} s`);
  }
  await page.evaluate(() => { T.hls.subtitleTrack = -1; return T.video.play(); });
  log('subtitles', `track "${tracks[0]}" shows every cue in its span`);
  return { step: what, ms: Date.now() - t0 };
}

// blankPage makes page an empty document of the server's origin (so that
// its requests are same-origin), or of another origin, holding only the
// player's script.
async function blankPage(page, title, script, crossOrigin) {
  // localhost is another origin than 127.0.0.1 for the browser.
  await page.goto((crossOrigin ? cfg.base.replace('127.0.0.1', 'localhost') : cfg.base) + '/healthz');
  await page.setContent(`<!doctype html><title>${title}</title><body></body>`);
  await page.addScriptTag(script);
}

// stateAtFailure says where a player stood when a step failed: its
// position, readiness and buffered ranges, and the last requests to the
// server it saw complete, when each started and how long it took, so that
// a failure in CI says whether the player was waiting on the server.
async function stateAtFailure(page) {
  return page.evaluate(() => {
    const v = T.video;
    const ranges = [];
    for (let i = 0; i < v.buffered.length; i++) ranges.push(`${v.buffered.start(i).toFixed(2)}-${v.buffered.end(i).toFixed(2)}`);
    const last = performance.getEntriesByType('resource').filter((e) => e.name.includes('/videos/')).slice(-8)
      .map((e) => `${e.name.replace(/^.*\/videos\/[^/]+\//, '').replace(/\?.*$/, '')} @${Math.round(e.startTime - T.t0)}+${Math.round(e.responseEnd - e.startTime)}ms`);
    return ` [at failure: t=${v.currentTime.toFixed(2)} s, readyState ${v.readyState}, seeking ${v.seeking}, paused ${v.paused}, ` +
      `buffered ${ranges.join(' ') || 'none'}; last requests: ${last.join(', ') || 'none'}]`;
  }).catch(() => '');
}

async function playFile(file) {
  const res = { name: file.name, steps: [], errors: [], jumps: [], failure: '' };
  const page = await browser.newPage();
  page.on('pageerror', (e) => res.errors.push({ fatal: true, details: 'page error: ' + e.message }));
  // Loads hls.js gave up on (a seek, a level switch, a timeout), counted
  // per step: a player cancelling and retrying the same request in a loop
  // shows here.
  let aborted = 0;
  page.on('requestfailed', (r) => { if (/ABORTED/.test((r.failure() || {}).errorText || '')) aborted++; });
  const step = async (p) => {
    const before = aborted;
    const s = await p;
    s.aborted = aborted - before;
    return s;
  };
  try {
    await blankPage(page, 'hls.js', { url: cfg.base + '/hls.min.js' });
    // One client for the whole run, as the web player is one per tab: on
    // the next file, the server releases the last one's encoders, whose
    // CPU would otherwise make the next master list fewer rungs.
    const master = `${cfg.base}/videos/${file.id}/master.m3u8?clientId=e2e-browser&progressive=1`;
    if (cfg.debug) page.on('console', (m) => log(file.name, m.text()));
    const audible = !!(file.tones && file.tones.length);
    await page.evaluate(`(${harness})(${JSON.stringify(master)}, ${!!cfg.debug}, ${audible}); T.mark = T.t0;`);

    const start = await waitPlaying(page, 0, 0.3, 'startup');
    res.steps.push({ step: 'startup', ms: Math.round(start.resumeMs), aborted });
    const info = await page.evaluate(() => ({
      duration: T.video.duration,
      levels: T.hls.levels.map((l) => ({ height: l.height, bitrate: l.bitrate, url: l.uri || [].concat(l.url)[0], codecs: l.codecs })),
      level: T.hls.currentLevel >= 0 ? T.hls.currentLevel : T.hls.loadLevel,
      audio: T.hls.audioTracks.map((a) => ({ name: a.name, lang: a.lang, default: a.default })),
    }));
    res.duration = info.duration;
    res.levels = info.levels;
    res.audio = info.audio;
    log(file.name, `started in ${res.steps[0].ms} ms, ${info.levels.length} levels, ${info.audio.length} audio tracks`);

    // Seeks first, while the buffer holds only the start, so that both
    // leave it and measure the server.
    res.steps.push(await step(seek(page, 0.5, 'seek 50%')));
    res.steps.push(await step(seek(page, 0.9, 'seek 90%')));
    // Play on: segments of the run the seek started must join without a stall.
    const pos = await page.evaluate(() => { T.mark = performance.now(); return T.video.currentTime; });
    await waitPlaying(page, pos, Math.min(2, res.duration - pos - 0.5), 'play on after seek 90%');
    // Back near the start, to leave room for the switches in short clips.
    res.steps.push(await step(seek(page, 0.1, 'rewind to 10%')));
    // The rung hls.js's own ABR chose, before the forced switches below.
    res.abrHeight = await page.evaluate(() => (T.hls.levels[T.hls.currentLevel] || {}).height || 0);

    // Switch to another rung mid-play and back, the way ABR does: nextLevel
    // keeps the buffer and appends the new rung's segments after it, so
    // any misalignment between rungs shows up as a hole or a stall.
    // From the rung playing now, not the one at startup: ABR may have moved
    // since (on a slow re-encode it steps down), and a switch to the rung
    // already playing would wait for an event that never comes.
    const from = await page.evaluate(() => (T.hls.currentLevel >= 0 ? T.hls.currentLevel : T.hls.loadLevel));
    const to = info.levels.length > 1 ? (from === 0 ? info.levels.length - 1 : 0) : -1;
    if (to >= 0) {
      for (const [lvl, what] of [[to, `switch to level ${to}`], [from, `switch back to level ${from}`]]) {
        const pos = await page.evaluate((lvl) => { T.epoch++; T.mark = performance.now(); T.switchMark = T.switches.length; T.hls.nextLevel = lvl; return T.video.currentTime; }, lvl);
        const ms = await waitSwitch(page, 'level', lvl, what);
        await waitPlaying(page, pos, 0.5, what);
        res.steps.push({ step: what, ms: Math.round(ms) });
      }
    }

    if (info.audio.length > 1) {
      for (const [id, what] of [[1, 'switch to audio 1'], [0, 'switch back to audio 0']]) {
        const pos = await page.evaluate((id) => { T.epoch++; T.mark = performance.now(); T.switchMark = T.switches.length; T.hls.audioTrack = id; return T.video.currentTime; }, id);
        const ms = await waitSwitch(page, 'audio', id, what);
        await waitPlaying(page, pos, 0.5, what);
        res.steps.push({ step: what, ms: Math.round(ms) });
        if (file.tones) {
          // What is heard, not what hls.js says: the decoded audio's pitch.
          const hz = await page.evaluate(() => T.pitch());
          const want = file.tones[id];
          log(file.name, `${what}: audio sounds at ${hz.toFixed(0)} Hz, track ${id} is ${want} Hz`);
          if (Math.abs(hz - want) > want * 0.1) throw new Error(`${what}: audio sounds at ${hz.toFixed(0)} Hz, want ${want} Hz`);
        }
      }
    }

    if (file.cues) {
      res.steps.push(await checkSubtitles(page, file.cues));
    }

  } catch (e) {
    res.failure = e.message + await stateAtFailure(page);
    await page.screenshot({ path: path.join(cfg.artifacts, `fail-${file.name}.png`) }).catch(() => {});
  }
  await collect(page, res);
  return res;
}

// watchFile plays one rung of a file straight on for w.seconds after
// startup, fetching w.hook the moment fragment w.hookFrag starts loading
// (the caller does something to the servers then), and reports the longest stall, the media time played and
// the frames decoded. A seek or a switch is not part of it: any jump fails.
async function watchFile(file, w) {
  const res = { name: `watch ${file.name}`, steps: [], errors: [], jumps: [], failure: '' };
  const page = await browser.newPage();
  page.on('pageerror', (e) => res.errors.push({ fatal: true, details: 'page error: ' + e.message }));
  try {
    await blankPage(page, 'hls.js', { url: cfg.base + '/hls.min.js' });
    const master = `${cfg.base}/videos/${file.id}/master.m3u8?clientId=watch-${encodeURIComponent(file.name)}&progressive=1`;
    if (cfg.debug) page.on('console', (m) => log(res.name, (Date.now() % 100000) + ' ' + m.text()));
    await page.evaluate(`(${harness})(${JSON.stringify(master)}, ${!!cfg.debug}, false, ${JSON.stringify(w)}); T.mark = T.t0;`);
    const start = await waitPlaying(page, 0, 0.3, 'startup');
    res.steps.push({ step: 'startup', ms: Math.round(start.resumeMs) });
    const started = await page.evaluate(() => performance.now());
    await new Promise((r) => setTimeout(r, w.seconds * 1000));
    const hooked = await page.evaluate(() => T.hooked);
    if (w.hook && !hooked) throw new Error(`fragment ${w.hookFrag} was never loaded in ${w.seconds} s`);
    if (hooked) {
      res.steps.push({ step: `hook at ${hooked.at.toFixed(1)} s, ${hooked.ahead.toFixed(1)} s buffered ahead` });
      log(res.name, res.steps[1].step);
    }
    const q = await page.evaluate((from) => {
      // From the end of startup: the wait for the first frame is not a stall.
      const s = T.samples.filter((x) => x[0] >= from);
      let longest = 0;
      let since = s.length ? s[0][0] : 0;
      for (let i = 1; i < s.length; i++) {
        if (s[i][1] !== s[i - 1][1]) since = s[i][0];
        longest = Math.max(longest, s[i][0] - since);
      }
      return {
        longest: longest / 1000,
        played: T.video.currentTime,
        frames: T.video.getVideoPlaybackQuality().totalVideoFrames,
        level: (T.hls.levels[T.hls.currentLevel] || {}).height || 0,
      };
    }, started);
    res.longestStall = q.longest;
    res.played = q.played;
    res.frames = q.frames;
    log(res.name, `played ${q.played.toFixed(1)} s at ${q.level}p, ${q.frames} frames, longest stall ${q.longest.toFixed(2)} s`);
  } catch (e) {
    res.failure = e.message + await stateAtFailure(page);
    await page.screenshot({ path: path.join(cfg.artifacts, `fail-watch-${file.name}.png`) }).catch(() => {});
  }
  await collect(page, res);
  return res;
}

// collect adds the player's errors and the position's jumps to res, and
// closes the page. Within one epoch (between two of our own actions) the
// position must only move forward at about real time: 50 ms samples never
// jump by more than a second.
async function collect(page, res) {
  const after = await page.evaluate(() => ({ errors: T.errors, samples: T.samples })).catch(() => ({ errors: [], samples: [] }));
  res.errors.push(...after.errors);
  const s = after.samples;
  for (let i = 1; i < s.length; i++) {
    if (s[i][2] !== s[i - 1][2]) continue;
    const dt = s[i][1] - s[i - 1][1];
    const wall = (s[i][0] - s[i - 1][0]) / 1000;
    if (dt < -0.001 || dt > wall + 1) res.jumps.push({ from: s[i - 1][1], to: s[i][1] });
  }
  await page.close();
}

// otherHarness runs inside the page: one player of another library on a
// bare <video>, recording errors and the playback position as harness does,
// with a forward buffer as short as hls.js's there, so seeks measure the
// server.
function otherHarness(kind, master, debug) {
  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  video.style.width = '640px';
  document.body.append(video);
  const T = { errors: [], switches: [], samples: [], epoch: 0, video };
  window.T = T;
  const fail = (details, fatal) => T.errors.push({ at: video.currentTime, fatal, type: kind, details: String(details) });
  // Not while fast-forwarding: Shaka then plays single I-frames and jumps
  // the gaps between them, which is not playback at real time.
  setInterval(() => {
    if (!video.paused && !video.seeking && video.playbackRate === 1) T.samples.push([performance.now(), video.currentTime, T.epoch]);
  }, 50);
  T.t0 = performance.now();
  const play = () => video.play().catch((e) => fail('play() refused: ' + e.message, true));
  // The "-defaults" kinds are each library as a front end written by
  // someone else runs it: nothing configured but the source. (hls.js's
  // forward buffer is cut to 10 s, as such a front end would on short
  // clips: at its 30 s default every seek in them lands in the buffer.)
  if (kind === 'shaka' || kind === 'shaka-defaults') {
    shaka.polyfill.installAll();
    const p = new shaka.Player();
    if (kind === 'shaka') p.configure({ streaming: { bufferingGoal: 4, rebufferingGoal: 0.5 } });
    // Severity 2 is CRITICAL: the player stopped.
    p.addEventListener('error', (e) => fail(`${e.detail.code} ${JSON.stringify(e.detail.data || []).slice(0, 300)}`, e.detail.severity === 2));
    T.player = p;
    p.attach(video).then(() => p.load(master)).then(play).catch((e) => fail(`load: ${e.code || ''} ${e.message || ''}`, true));
  } else if (kind === 'videojs' || kind === 'videojs-defaults') {
    if (kind === 'videojs') {
      videojs.Vhs.GOAL_BUFFER_LENGTH = 4;
      videojs.Vhs.MAX_GOAL_BUFFER_LENGTH = 4;
    }
    const p = videojs(video, { muted: true, html5: { vhs: { overrideNative: true } } });
    p.on('error', () => fail(`${(p.error() || {}).code} ${(p.error() || {}).message}`, true));
    T.player = p;
    p.src({ src: master, type: 'application/x-mpegURL' });
    p.ready(play);
  } else if (kind === 'hls.js-defaults') {
    const hls = new Hls({ debug, maxBufferLength: 10 });
    hls.on(Hls.Events.ERROR, (_, d) => fail(`${d.type}/${d.details}`, !!d.fatal));
    hls.loadSource(master);
    hls.attachMedia(video);
    play();
    T.player = hls;
  } else {
    // hls.js as the web player runs it (see harness), for comparison.
    const hls = new Hls({ debug, maxBufferLength: 4, maxMaxBufferLength: 4, progressive: true, autoStartLoad: false });
    video.addEventListener('seeking', () => {
      const t = video.currentTime;
      const b = video.buffered;
      for (let i = 0; i < b.length; i++) if (b.start(i) <= t && t < b.end(i)) return;
      hls.stopLoad();
      hls.startLoad(t);
    });
    hls.on(Hls.Events.ERROR, (_, d) => fail(`${d.type}/${d.details}`, !!d.fatal));
    hls.on(Hls.Events.MANIFEST_PARSED, (_, d) => {
      hls.startLevel = d.firstLevel;
      hls.startLoad();
      play();
    });
    hls.loadSource(master);
    hls.attachMedia(video);
    T.player = hls;
  }
}

const playerScripts = {
  shaka: path.join(here, 'node_modules/shaka-player/dist/shaka-player.compiled.js'),
  videojs: path.join(here, 'node_modules/video.js/dist/video.min.js'),
};
playerScripts['shaka-defaults'] = playerScripts.shaka;
playerScripts['videojs-defaults'] = playerScripts.videojs;

// playOther plays a file in cfg.player: startup, seeks to 50 % and 90 %,
// two seconds of play, a rewind to 10 %.
async function playOther(file, kind) {
  const res = { name: `${kind} ${file.name}${file.container ? ' (' + file.container + ')' : ''}`, steps: [], errors: [], jumps: [], failure: '' };
  const page = await browser.newPage();
  page.on('pageerror', (e) => res.errors.push({ fatal: true, details: 'page error: ' + e.message }));
  let aborted = 0;
  res.aborts = [];
  page.on('requestfailed', (r) => {
    if (!/ABORTED/.test((r.failure() || {}).errorText || '')) return;
    aborted++;
    res.aborts.push(r.url().replace(/^.*\/videos\/[^/]+\//, '').replace(/\?.*$/, ''));
  });
  const step = async (p) => {
    const before = aborted;
    const s = await p;
    s.aborted = aborted - before;
    s.abortedURLs = res.aborts.slice(before);
    return s;
  };
  const defaults = kind.endsWith('-defaults');
  try {
    // A front end of someone else's is on another origin than the server.
    await blankPage(page, kind, kind.startsWith('hls.js') ? { url: cfg.base + '/hls.min.js' } : { path: playerScripts[kind] }, defaults);
    // hls.js as the web player runs it reads progressively, and says so.
    const master = `${cfg.base}/videos/${file.id}/master.m3u8?clientId=${encodeURIComponent(kind + '-' + file.name)}` +
      (kind === 'hls.js' ? '&progressive=1' : '') + (file.container ? `&container=${file.container}` : '');
    if (cfg.debug) page.on('console', (m) => log(res.name, (Date.now() % 100000) + ' ' + m.text()));
    await page.evaluate(`(${otherHarness})(${JSON.stringify(kind)}, ${JSON.stringify(master)}, ${!!cfg.debug}); T.mark = T.t0;`);
    const start = await waitPlaying(page, 0, 0.3, 'startup');
    res.steps.push({ step: 'startup', ms: Math.round(start.resumeMs), aborted, abortedURLs: res.aborts.slice() });
    // The startup's waterfall: every request, from the player's start.
    res.requests = await page.evaluate(() => performance.getEntriesByType('resource')
      .filter((e) => e.name.includes('/videos/'))
      .map((e) => ({ url: e.name.replace(/^.*\/videos\/[^/]+\//, '').replace(/\?.*$/, ''),
        start: Math.round(e.startTime - T.t0), firstByte: Math.round(e.responseStart - T.t0), end: Math.round(e.responseEnd - T.t0), bytes: e.encodedBodySize })));
    res.duration = await page.evaluate(() => T.video.duration);
    res.steps.push(await step(seek(page, 0.5, 'seek 50%')));
    res.steps.push(await step(seek(page, 0.9, 'seek 90%')));
    const pos = await page.evaluate(() => { T.mark = performance.now(); return T.video.currentTime; });
    await waitPlaying(page, pos, Math.min(2, res.duration - pos - 0.5), 'play on after seek 90%');
    res.steps.push(await step(seek(page, 0.1, 'rewind to 10%')));
    // Fast-forward: Shaka plays an I-frame playlist when it is on H.264 (the
    // I-frame playlists are of the rungs; a VP9 original has none). From
    // the start of the file opened anew, as a viewer fast-forwarding what
    // they just opened: after the seeks, all that is left of a short clip
    // may be buffered already, and trick play would then fetch nothing.
    const codec = kind.startsWith('shaka') && !file.container &&
      await page.evaluate(() => (T.player.getVariantTracks().find((t) => t.active) || {}).videoCodec || '');
    if (codec && codec.startsWith('avc1')) {
      const t0 = Date.now();
      await page.evaluate(async (m) => {
        T.epoch++;
        await T.player.load(m);
        await T.video.play().catch(() => {});
        T.player.trickPlay(4);
      }, master);
      const h = await page.waitForFunction(() => {
        const got = performance.getEntriesByType('resource').map((e) => e.name).filter((n) => /\/iframe-\d+\.m4s/.test(n));
        return got.length > 0 && got;
      }, null, { timeout: STEP_TIMEOUT, polling: 50 })
        .catch((e) => { throw new Error(`trick play: no I-frame loaded: ${e.message.split('\n')[0]}`); });
      const got = await h.jsonValue();
      await page.evaluate(() => { T.epoch++; T.player.cancelTrickPlay(); });
      res.steps.push({ step: `trick play: ${got.length} I-frames loaded`, ms: Date.now() - t0 });
    }
    log(res.name, res.steps.map((s) => `${s.step} ${s.ms} ms`).join(', '));
  } catch (e) {
    res.failure = e.message + await stateAtFailure(page);
    await page.screenshot({ path: path.join(cfg.artifacts, `fail-${kind}-${file.name}.png`) }).catch(() => {});
  }
  await collect(page, res);
  return res;
}

// pageTest uses the web player as a person would: library, folder, file,
// playback, a quality from the menu, the keyboard, the way back (which now
// knows the duration), a phone-sized screen; then a deep link to a file
// that does not exist must show the server's error.
async function pageTest(p) {
  const res = { name: 'web page', steps: [], errors: [], jumps: [], failure: '' };
  const page = await browser.newPage({ viewport: { width: 1024, height: 700 } });
  page.on('pageerror', (e) => res.errors.push({ fatal: true, details: 'page error: ' + e.message }));
  const video = () => page.evaluate(() => {
    const v = document.getElementById('video');
    return { t: v.currentTime, paused: v.paused };
  });
  const check = (ok, msg) => { if (!ok) throw new Error(msg); };
  try {
    await mkdir(cfg.artifacts, { recursive: true });
    const t0 = Date.now();
    await page.goto(cfg.base + '/');
    await page.getByRole('link', { name: p.folder }).click();
    await page.getByRole('link', { name: p.name }).click();
    await page.waitForFunction(() => {
      const v = document.getElementById('video');
      return !v.paused && v.currentTime > 0.3;
    }, null, { timeout: STEP_TIMEOUT });
    res.steps.push({ step: 'browse and play', ms: Date.now() - t0 });

    // Seek-bar previews: hovering the bar at 75 % of the 20 s file shows the
    // second tile (10-20 s) of a sheet that loads; a click at 25 % seeks there.
    await page.locator('#scrub').waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    const bar = await page.locator('#scrub').boundingBox();
    await page.mouse.move(bar.x + bar.width * 0.75, bar.y + bar.height / 2);
    await page.locator('#preview').waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    const shown = await page.evaluate(async () => {
      const img = document.getElementById('preview-img');
      const url = getComputedStyle(img).backgroundImage.replace(/^url\("?|"?\)$/g, '');
      const sheet = new Image();
      sheet.src = url;
      await sheet.decode().catch(() => {});
      return { url, w: img.offsetWidth, h: img.offsetHeight, at: img.style.backgroundPosition,
        sheet: [sheet.naturalWidth, sheet.naturalHeight], time: document.getElementById('preview-time').textContent };
    });
    check(/\/trickplay\/sheet-0\.jpg/.test(shown.url) && shown.w === 240 && shown.h > 0 && shown.sheet[0] >= 480 &&
      /^-240px -?0px$/.test(shown.at) && shown.time === '0:15', 'hover preview: ' + JSON.stringify(shown));
    await page.screenshot({ path: path.join(cfg.artifacts, 'web-player-preview.png') });
    await page.mouse.move(bar.x + bar.width * 0.25, bar.y + bar.height / 2);
    await page.mouse.down();
    await page.mouse.up();
    const landed = (await video()).t;
    check(landed > 4 && landed < 7, `click on the seek bar at 25 %: position ${landed.toFixed(2)} s, want about 5`);
    check(await page.locator('#preview').isHidden(), 'preview still shown after the click');
    res.steps.push({ step: `seek-bar preview: ${shown.time} from ${shown.url.replace(/^.*\//, '')} at ${shown.at}; click seeks to ${landed.toFixed(1)} s` });

    check(await page.locator('#audio-box').isHidden(), 'audio menu shown for a file with one audio track');
    check(await page.locator('#subs-box').isHidden(), 'subtitle menu shown for a file without subtitles');
    check(await page.locator('#quality-box').isVisible(), 'no quality menu');
    const options = await page.locator('#quality option').evaluateAll((os) => os.map((o) => [o.value, o.textContent]));
    const pick = options.find(([v]) => v !== '-1' && v !== '0') || options.find(([v]) => v !== '-1');
    check(pick, 'quality menu has no rungs: ' + JSON.stringify(options));
    const pos = (await video()).t;
    await page.selectOption('#quality', pick[0]);
    await page.waitForFunction(([lvl, pos]) => hls && hls.currentLevel === lvl && document.getElementById('video').currentTime > pos + 0.5,
      [Number(pick[0]), pos], { timeout: STEP_TIMEOUT });
    res.steps.push({ step: `quality menu: ${options.map((o) => o[1]).join(', ')}; picked ${pick[1]}` });
    check(await page.locator('#banner').isHidden(), 'error banner: ' + await page.locator('#banner-text').textContent());
    res.screenshot = path.join(cfg.artifacts, 'web-player.png');
    await page.screenshot({ path: res.screenshot });

    // Keyboard: space pauses and resumes, the right arrow skips 10 s.
    await page.locator('body').click({ position: { x: 5, y: 5 } }); // focus the page, not the menu
    await page.keyboard.press(' ');
    check((await video()).paused, 'space did not pause');
    await page.keyboard.press(' ');
    const before = (await video()).t;
    await page.keyboard.press('ArrowRight');
    const after = (await video()).t;
    check(!(await video()).paused && after >= before + 9.5, `ArrowRight: ${before.toFixed(2)} -> ${after.toFixed(2)}, want +10 s and playing`);
    res.steps.push({ step: 'keyboard: space, space, ArrowRight' });

    // Back to the folder: the file has been probed, so its duration shows.
    await page.getByRole('button', { name: /Back/ }).click();
    const row = page.getByRole('link', { name: new RegExp(p.name) });
    await row.waitFor({ timeout: STEP_TIMEOUT });
    const text = await row.textContent();
    check(/0:2\d \u00b7 /.test(text), `library row lacks the duration: ${JSON.stringify(text)}`);
    res.steps.push({ step: 'back to the folder: ' + text.replace(/\s+/g, ' ').trim() });

    // A phone: the player fits the width, menus included.
    await page.setViewportSize({ width: 390, height: 844 });
    await row.click();
    await page.locator('#quality-box').waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `page is ${overflow}px wider than a 390px screen`);
    await page.screenshot({ path: path.join(cfg.artifacts, 'web-player-phone.png') });
    res.steps.push({ step: 'phone-sized screen: no horizontal overflow' });

    // A deep link to a missing file: the person must see why it fails.
    await page.goto(cfg.base + '/#/play/' + p.missingId);
    await page.locator('#banner').waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    res.banner = await page.locator('#banner-text').textContent();
    res.steps.push({ step: 'deep link to a missing file shows: ' + res.banner });
  } catch (e) {
    res.failure = e.message;
    await page.screenshot({ path: path.join(cfg.artifacts, 'fail-web-page.png') }).catch(() => {});
  }
  await page.close();
  return res;
}

// tokenTest walks the page of a server that requires a token: without it,
// the person is told so; opened once with ?token=, the page plays (its
// scripts, listing and playlists are authorised by the cookie it got).
async function tokenTest(p) {
  const res = { name: 'web page with a token', steps: [], errors: [], jumps: [], failure: '' };
  const page = await browser.newPage({ viewport: { width: 1024, height: 700 } });
  try {
    const denied = await page.goto(p.base + '/');
    if (denied.status() !== 401) throw new Error(`page without the token: HTTP ${denied.status()}, want 401`);
    res.steps.push({ step: 'without the token: HTTP 401' });
    await page.goto(`${p.base}/?token=${encodeURIComponent(p.token)}#/dir/${encodeURIComponent(p.folder)}`);
    await page.getByRole('link', { name: p.name }).click();
    await page.waitForFunction(() => {
      const v = document.getElementById('video');
      return !v.paused && v.currentTime > 0.3;
    }, null, { timeout: STEP_TIMEOUT });
    if (await page.locator('#banner').isVisible()) throw new Error('error banner: ' + await page.locator('#banner-text').textContent());
    res.steps.push({ step: 'opened with ?token=: browse and play' });
  } catch (e) {
    res.failure = e.message;
    await page.screenshot({ path: path.join(cfg.artifacts, 'fail-web-page-token.png') }).catch(() => {});
  }
  await page.close();
  return res;
}

// activityTest opens the Activity view while a job runs: its progress bar
// must show and move, as the server's progress grows.
async function activityTest(a) {
  const res = { name: 'activity view', steps: [], errors: [], jumps: [], failure: '' };
  const page = await browser.newPage({ viewport: { width: 1024, height: 700 } });
  page.on('pageerror', (e) => res.errors.push({ fatal: true, details: 'page error: ' + e.message }));
  try {
    const t0 = Date.now();
    await page.goto(cfg.base + '/#/activity');
    const bar = page.locator(`progress[data-job="${a.job}"]`);
    await bar.waitFor({ timeout: STEP_TIMEOUT });
    const first = await bar.evaluate((p) => p.value);
    res.steps.push({ step: `progress bar shown at ${(first * 100).toFixed(0)} %`, ms: Date.now() - t0 });
    await page.waitForFunction(([id, v]) => {
      const p = document.querySelector(`progress[data-job="${id}"]`);
      return p && p.value > v + 0.01;
    }, [a.job, first], { timeout: STEP_TIMEOUT, polling: 100 });
    const later = await bar.evaluate((p) => p.value);
    res.steps.push({ step: `progress bar moved to ${(later * 100).toFixed(0)} %`, ms: Date.now() - t0 });
    await page.screenshot({ path: path.join(cfg.artifacts, 'activity.png') });
  } catch (e) {
    res.failure = e.message;
    await page.screenshot({ path: path.join(cfg.artifacts, 'fail-activity.png') }).catch(() => {});
  }
  await page.close();
  return res;
}

// playingInPage waits until the web player's video has started.
function playingInPage(page) {
  return page.waitForFunction(() => {
    const v = document.getElementById('video');
    return !v.paused && v.currentTime > 0.3;
  }, null, { timeout: STEP_TIMEOUT });
}

// noBanner fails with the page's error banner when it shows one.
async function noBanner(page) {
  if (await page.locator('#banner').isVisible()) throw new Error('error banner: ' + await page.locator('#banner-text').textContent());
}

// codecsTest opens a file in the web player and lets it play: the caller
// judges the codec list the page sent, the levels hls.js got and every
// request the page made (so also what it must never have loaded).
async function codecsTest(c) {
  const res = { name: 'web player codecs', steps: [], errors: [], jumps: [], failure: '', urls: [] };
  const page = await browser.newPage({ viewport: { width: 1024, height: 700 } });
  page.on('pageerror', (e) => res.errors.push({ fatal: true, details: 'page error: ' + e.message }));
  page.on('request', (r) => res.urls.push(r.url()));
  const state = () => page.evaluate(() => {
    const v = document.getElementById('video');
    return { t: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames };
  });
  try {
    const t0 = Date.now();
    await page.goto(cfg.base + '/#/play/' + c.id);
    await playingInPage(page);
    res.steps.push({ step: 'startup', ms: Date.now() - t0 });
    const from = await state();
    const want = c.seconds || 3;
    await page.waitForFunction(([t, by]) => document.getElementById('video').currentTime > t + by,
      [from.t, want], { timeout: STEP_TIMEOUT + want * 1000 });
    const to = await state();
    res.played = to.t - from.t;
    res.frames = to.frames;
    res.steps.push({ step: `played ${res.played.toFixed(1)} s, ${to.frames} frames decoded`, ms: Date.now() - t0 });
    await noBanner(page);
    const seen = await page.evaluate(() => ({
      codecs: playableCodecs,
      levels: (hls ? hls.levels : []).map((l) => ({
        height: l.height || 0, bitrate: l.bitrate || 0,
        url: l.uri || [].concat(l.url || [])[0] || '', codecs: (l.attrs && l.attrs.CODECS) || '',
      })),
    }));
    res.codecs = seen.codecs;
    res.levels = seen.levels;
    // The decision line has a request of its own; a server without it
    // leaves the line hidden, which the caller judges.
    await page.locator('#decision').waitFor({ state: 'visible', timeout: 5000 }).catch(() => {});
    res.text = (await page.locator('#decision').textContent()) || '';
    await page.screenshot({ path: path.join(cfg.artifacts, 'web-player-codecs.png') });
  } catch (e) {
    res.failure = e.message;
    await page.screenshot({ path: path.join(cfg.artifacts, 'fail-web-player-codecs.png') }).catch(() => {});
  }
  await page.close();
  return res;
}

// downloadMenuTest opens the Download menu of a file, reads what it
// offers, picks a quality and an audio track and returns the link.
async function downloadMenuTest(d) {
  const res = { name: 'download menu', steps: [], errors: [], jumps: [], failure: '' };
  const page = await browser.newPage({ viewport: { width: 1024, height: 700 } });
  page.on('pageerror', (e) => res.errors.push({ fatal: true, details: 'page error: ' + e.message }));
  const options = (sel) => page.locator(sel + ' option').evaluateAll((os) => os.map((o) => ({ value: o.value, label: o.textContent })));
  try {
    const t0 = Date.now();
    const query = d.token ? `?token=${encodeURIComponent(d.token)}` : '';
    await page.goto(`${d.base || cfg.base}/${query}#/play/${d.id}`);
    await page.locator('#download-box').waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    await page.locator('#download-box summary').click();
    await page.locator('#dl-quality').waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    res.qualities = await options('#dl-quality');
    res.audioOptions = await options('#dl-audio');
    res.steps.push({ step: `menu: ${res.qualities.map((o) => o.label).join(', ')} / ${res.audioOptions.map((o) => o.label).join(', ')}`, ms: Date.now() - t0 });
    await page.selectOption('#dl-quality', d.quality);
    if (res.audioOptions.length > 1) await page.selectOption('#dl-audio', String(d.audio));
    const link = page.locator('#dl-link');
    res.link = await link.evaluate((a) => a.href);
    if (!(await link.evaluate((a) => a.hasAttribute('download')))) throw new Error('the download link has no download attribute');
    res.steps.push({ step: `picked ${d.quality}, track ${d.audio}: ${res.link}` });
    await page.screenshot({ path: path.join(cfg.artifacts, 'download-menu.png'), fullPage: true });
    await noBanner(page);
  } catch (e) {
    res.failure = e.message;
    await page.screenshot({ path: path.join(cfg.artifacts, 'fail-download-menu.png') }).catch(() => {});
  }
  await page.close();
  return res;
}

// downloadsTest opens the Activity view while a download is sent: its row
// must show and its progress bar move.
async function downloadsTest(d) {
  const res = { name: 'activity downloads', steps: [], errors: [], jumps: [], failure: '' };
  const page = await browser.newPage({ viewport: { width: 1024, height: 700 } });
  page.on('pageerror', (e) => res.errors.push({ fatal: true, details: 'page error: ' + e.message }));
  try {
    const t0 = Date.now();
    await page.goto(cfg.base + '/#/activity');
    const key = `${d.file}|${d.quality}|`;
    const bar = page.locator(`progress[data-download^="${key}"]`);
    await bar.waitFor({ timeout: STEP_TIMEOUT });
    const first = await bar.evaluate((p) => p.value);
    res.steps.push({ step: `download row shown at ${(first * 100).toFixed(0)} %`, ms: Date.now() - t0 });
    await page.waitForFunction(([key, v]) => {
      const p = document.querySelector(`progress[data-download^="${key}"]`);
      return p && p.value > v + 0.005;
    }, [key, first], { timeout: STEP_TIMEOUT, polling: 100 });
    const later = await bar.evaluate((p) => p.value);
    res.text = await bar.evaluate((p) => p.closest('tr').innerText.replace(/\s+/g, ' ').trim());
    res.steps.push({ step: `progress moved to ${(later * 100).toFixed(0)} %: ${res.text}`, ms: Date.now() - t0 });
    await page.screenshot({ path: path.join(cfg.artifacts, 'activity-downloads.png') });
  } catch (e) {
    res.failure = e.message;
    await page.screenshot({ path: path.join(cfg.artifacts, 'fail-activity-downloads.png') }).catch(() => {});
  }
  await page.close();
  return res;
}

const results = [];
try {
  await mkdir(cfg.artifacts, { recursive: true });
  for (const f of cfg.files || []) {
    results.push(await (cfg.watch ? watchFile(f, cfg.watch) : cfg.player ? playOther(f, cfg.player) : playFile(f)));
  }
  if (cfg.page) results.push(await pageTest(cfg.page));
  if (cfg.token) results.push(await tokenTest(cfg.token));
  if (cfg.activity) results.push(await activityTest(cfg.activity));
  if (cfg.codecs) results.push(await codecsTest(cfg.codecs));
  if (cfg.downloadMenu) results.push(await downloadMenuTest(cfg.downloadMenu));
  if (cfg.downloads) results.push(await downloadsTest(cfg.downloads));
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(results) + '\n');
