// hlsd web player: a folder browser over /api/media and an HLS player.
// Plain script, no build step. Views are driven by the URL hash so that the
// browser's back button works and links can be shared:
//   #/dir/<folder>   a folder of the library (empty = root)
//   #/play/<id>      the player for one media id
'use strict';

const $ = (id) => document.getElementById(id);

// The server uses clientId to stop encoders this tab has abandoned. It
// must stay the same across reloads of one tab (a reload resumes the same
// viewing) but differ between tabs, hence sessionStorage.
const clientId = (() => {
  const key = 'hlsd.clientId';
  let id = sessionStorage.getItem(key);
  if (!id) {
    // getRandomValues, not randomUUID: the latter needs a secure context,
    // and hlsd is often opened over plain http on a LAN address.
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    id = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    sessionStorage.setItem(key, id);
  }
  return id;
})();

// With --auth-token, the page is opened as /?token=...; the server then sets
// a cookie for the page's own requests, and the token also goes on the
// master playlist URL so that players that ignore cookies (native HLS)
// carry it on to every URI the playlists list.
const token = new URLSearchParams(location.search).get('token');
const withToken = (url) => (token ? `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : url);

// ---- what this browser decodes ---------------------------------------------

// The server narrows the master to the codec prefixes a client names
// (api.md), so a browser that cannot decode the original gets a rung
// without ever loading the copy, and one that can plays the copy. Each
// family is tried in order and the first entry whose codec strings all
// decode is sent.
//
// HEVC and VP9 sources are often 10-bit, which some decoders lack while
// decoding 8-bit fine. A bare "hvc1" would keep a Main 10 copy such a
// browser then fails on, so it is sent only when Main 10 decodes too; a
// Main-only decoder sends "hvc1.1" (profile 1, see playlist.HEVCCodec),
// and likewise "vp09.00" (profile 0, 8-bit) for VP9. A server matching
// on the four-character code alone would drop those copies, which only
// costs a transcode.
const codecFamilies = [
  [['avc1', 'video/mp4', ['avc1.640028']]],
  [['hvc1', 'video/mp4', ['hvc1.1.6.L93.B0', 'hvc1.2.4.L120.90']], ['hvc1.1', 'video/mp4', ['hvc1.1.6.L93.B0']]],
  [['av01', 'video/mp4', ['av01.0.08M.08']]],
  [['vp09', 'video/mp4', ['vp09.00.40.08', 'vp09.02.40.10']], ['vp09.00', 'video/mp4', ['vp09.00.40.08']]],
  [['mp4a', 'audio/mp4', ['mp4a.40.2']]],
  [['ac-3', 'audio/mp4', ['ac-3']]],
  [['ec-3', 'audio/mp4', ['ec-3']]],
  [['opus', 'audio/mp4', ['opus']]],
];

// playableCodecs is the comma list for codecs=, or '' when this browser
// cannot say (then the master is left unfiltered rather than risk a 406
// for a browser that plays more than it admits). Probed once per page:
// the answers do not change while it is open.
const playableCodecs = (() => {
  const MS = window.ManagedMediaSource || window.MediaSource;
  let decodes;
  if (MS && typeof MS.isTypeSupported === 'function') {
    decodes = (type) => MS.isTypeSupported(type);
  } else {
    // Native HLS without MSE (older iOS): the element's own answer, and
    // only a firm one, since "maybe" is given for nearly anything.
    const v = document.createElement('video');
    decodes = (type) => v.canPlayType(type) === 'probably';
  }
  const hits = [];
  for (const family of codecFamilies) {
    const hit = family.find(([, type, codecs]) => codecs.every((c) => decodes(`${type}; codecs="${c}"`)));
    if (hit) hits.push(hit);
  }
  // Without any video codec the list would only earn a 406.
  if (!hits.some(([, type]) => type.startsWith('video/'))) return '';
  return hits.map(([prefix]) => prefix).join(',');
})();

// ---- errors ---------------------------------------------------------------

function showError(msg) {
  $('banner-text').textContent = msg;
  $('banner').hidden = false;
}

function clearError() {
  $('banner').hidden = true;
}

$('banner-close').addEventListener('click', clearError);

// apiError turns a failed response into the server's own message when it
// sent one ({"error": "...", "status": N}).
async function apiError(res) {
  try {
    const body = await res.json();
    if (body && body.error) return `${body.error} (HTTP ${res.status})`;
  } catch (e) {
    // not JSON: fall through to the status line
  }
  return `HTTP ${res.status} ${res.statusText}`.trim();
}

async function getJSON(url) {
  let res;
  try {
    res = await fetch(url, { headers: { Accept: 'application/json' } });
  } catch (e) {
    throw new Error(`Cannot reach the server: ${e.message}`);
  }
  if (!res.ok) throw new Error(await apiError(res));
  return res.json();
}

// ---- formatting -----------------------------------------------------------

function humanSize(n) {
  if (typeof n !== 'number' || n < 0) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

function humanDuration(sec) {
  if (typeof sec !== 'number' || !(sec > 0)) return '';
  const t = Math.round(sec);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const s = String(t % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

function humanDate(s) {
  const d = new Date(s);
  return isNaN(d) ? '' : d.toLocaleDateString();
}

// Ids are the media path in base64url without padding (see api.md), so the
// player can show a name and a way back without asking the server.
function pathFromId(id) {
  try {
    const b64 = id.replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  } catch (e) {
    return null;
  }
}

function parentDir(path) {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

const dirHash = (dir) => '#/dir/' + encodeURIComponent(dir);

// ---- library --------------------------------------------------------------

function renderCrumbs(dir) {
  const nav = $('crumbs');
  nav.replaceChildren();
  const add = (label, target) => {
    if (nav.childNodes.length) {
      const sep = document.createElement('span');
      sep.className = 'sep';
      sep.textContent = '/';
      nav.append(sep);
    }
    const a = document.createElement('a');
    a.href = dirHash(target);
    a.textContent = label;
    nav.append(a);
  };
  add('Library', '');
  let acc = '';
  for (const part of dir.split('/').filter(Boolean)) {
    acc = acc ? `${acc}/${part}` : part;
    add(part, acc);
  }
}

function entryItem(e) {
  const li = document.createElement('li');
  const a = document.createElement('a');
  const isDir = e.type === 'dir';
  a.href = isDir ? dirHash(e.path) : '#/play/' + e.id;

  const icon = document.createElement('span');
  icon.className = 'icon';
  icon.textContent = isDir ? '\u25B8' : '\u25B6'; // plain shapes: every text font has them, unlike emoji
  icon.setAttribute('aria-hidden', 'true');

  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = e.name;

  const meta = document.createElement('span');
  meta.className = 'meta';
  const date = document.createElement('span');
  date.className = 'date';
  date.textContent = humanDate(e.modified);
  // The server knows a duration only for files probed before.
  const facts = isDir ? '' : [humanDuration(e.duration), humanSize(e.size)].filter(Boolean).join(' \u00b7 ');
  meta.append(facts, document.createElement('br'), date);

  a.append(icon, name, meta);
  li.append(a);
  return li;
}

// Guards against a slow listing arriving after the person moved on.
let listingSeq = 0;

async function showLibrary(dir) {
  stopPlayer();
  stopActivity();
  $('player').hidden = true;
  $('library').hidden = false;
  document.title = dir ? `${dir} - hlsd` : 'hlsd';
  renderCrumbs(dir);

  const seq = ++listingSeq;
  const status = $('library-status');
  const list = $('entries');
  status.textContent = 'Loading\u2026';
  list.replaceChildren();
  let data;
  try {
    data = await getJSON(withToken('/api/media?dir=' + encodeURIComponent(dir)));
  } catch (e) {
    if (seq !== listingSeq) return;
    status.textContent = '';
    showError(e.message);
    return;
  }
  if (seq !== listingSeq) return;

  const entries = (data.entries || []).slice();
  // Folders first, then natural order so "E2" sorts before "E10".
  entries.sort((x, y) =>
    (x.type === 'dir' ? 0 : 1) - (y.type === 'dir' ? 0 : 1) ||
    x.name.localeCompare(y.name, undefined, { numeric: true, sensitivity: 'base' }));
  status.textContent = entries.length ? '' : 'Nothing playable in this folder.';
  list.replaceChildren(...entries.map(entryItem));
}

// ---- player ---------------------------------------------------------------

let hls = null;
let playingDir = '';

function stopPlayer() {
  if (hls) {
    hls.destroy();
    hls = null;
  }
  const video = $('video');
  if (video.getAttribute('src')) {
    video.pause();
    video.removeAttribute('src');
    video.load(); // drops the buffered media and stops native HLS loading
  }
  $('quality-box').hidden = true;
  $('audio-box').hidden = true;
  $('subs-box').hidden = true;
  infoSeq++;
  thumbs = [];
  $('download-box').hidden = true;
  $('download-box').open = false;
  $('decision').hidden = true;
  $('scrub').hidden = true;
  $('preview').hidden = true;
}

function levelName(level) {
  // hls.js 1.x keeps a list of URLs per level (url[]) and the first as uri.
  const url = level.uri || [].concat(level.url || [])[0] || '';
  if (url.includes('/original/')) return 'original';
  return level.height ? `${level.height}p` : `${Math.round((level.bitrate || 0) / 1000)} kb/s`;
}

function fillQuality() {
  const sel = $('quality');
  const auto = document.createElement('option');
  auto.value = '-1';
  auto.textContent = 'Auto';
  const opts = [auto];
  hls.levels.forEach((level, i) => {
    const o = document.createElement('option');
    o.value = String(i);
    o.textContent = levelName(level);
    opts.push(o);
  });
  sel.replaceChildren(...opts);
  sel.value = '-1'; // a new manifest always starts in Auto
  $('quality-box').hidden = hls.levels.length < 2;
}

// In Auto mode, show which level hls.js picked, so a person can tell.
function markAutoLevel() {
  const auto = $('quality').querySelector('option[value="-1"]');
  if (!auto || !hls) return;
  const cur = hls.levels[hls.currentLevel];
  auto.textContent = hls.autoLevelEnabled && cur ? `Auto (${levelName(cur)})` : 'Auto';
}

// fillAudio offers the audio tracks, with selected chosen.
//
// A file with surround sound lists each track twice in hls.js, once per
// audio group (stereo, then each track's own layout: see the master
// playlist); a rendition in both groups (a stereo track) is offered once,
// and surround ones say so.
function fillAudio(tracks, selected) {
  const sel = $('audio');
  const seen = new Set();
  const options = [];
  tracks.forEach((t, i) => {
    if (t.url && seen.has(t.url) && i !== selected) return;
    if (t.url) seen.add(t.url);
    const o = document.createElement('option');
    o.value = String(i);
    o.textContent = (t.name || t.label || t.lang || t.language || `Track ${i + 1}`) +
      (Number(t.channels) > 2 ? ` (${Number(t.channels) === 6 ? '5.1' : t.channels + ' ch'})` : '');
    options.push(o);
  });
  sel.replaceChildren(...options);
  sel.value = String(selected);
  $('audio-box').hidden = options.length < 2;
}

// fillSubtitles offers Off and every subtitle track; selected is -1 for off.
function fillSubtitles(tracks, selected) {
  const off = document.createElement('option');
  off.value = '-1';
  off.textContent = 'Off';
  $('subs').replaceChildren(off, ...tracks.map((t, i) => {
    const o = document.createElement('option');
    o.value = String(i);
    o.textContent = (t.name || t.label || t.lang || t.language || `Track ${i + 1}`) + (t.forced ? ' (forced)' : '');
    return o;
  }));
  $('subs').value = String(selected);
  $('subs-box').hidden = tracks.length === 0;
}

// When a load fails, hls.js only knows the status code; the server's JSON
// body says why (unknown id, not media, encoder failed...), so fetch it.
async function explainLoadError(url, fallback) {
  try {
    const res = await fetch(url);
    if (!res.ok) {
      showError(await apiError(res));
      return;
    }
  } catch (e) {
    // unreachable: the generic message below is all we have
  }
  showError(fallback);
}

function showPlayer(id) {
  stopPlayer();
  stopActivity();
  clearError();
  const path = pathFromId(id);
  playingDir = path === null ? '' : parentDir(path);
  const name = path === null ? id : path.split('/').pop();
  $('title').textContent = name;
  document.title = `${name} - hlsd`;
  renderCrumbs(playingDir);
  $('library').hidden = true;
  $('player').hidden = false;

  const ts = $('container').value === 'ts' ? '&container=ts' : '';
  // progressive=1 (carried onto every URI of the master): segments being
  // encoded are sent fragment by fragment, which this player reads as they
  // come; other players get each segment whole.
  // The prefixes are plain [a-z0-9.-], so the commas stay readable in logs.
  const codecs = playableCodecs ? `&codecs=${playableCodecs}` : '';
  const url = withToken(`/videos/${encodeURIComponent(id)}/master.m3u8?clientId=${encodeURIComponent(clientId)}&progressive=1${ts}${codecs}`);
  const video = $('video');
  loadInfo(id);

  if (window.Hls && Hls.isSupported()) {
    // progressive: a segment being encoded arrives fragment by fragment
    // (every 0.5 s of media), and playback starts on the first one rather
    // than when the whole segment is made.
    hls = new Hls({ progressive: true, autoStartLoad: false });
    const mine = hls;
    // hls.js 1.7.4 keeps the last fragment of a progressive load that a
    // seek aborts and parses the next segment after it, which misplaces
    // that segment (a hole, a stall). Restarting the load drops its
    // parser's state; seeks within the buffer load nothing and keep it.
    video.onseeking = () => {
      if (hls !== mine) return;
      const t = video.currentTime;
      const b = video.buffered;
      for (let i = 0; i < b.length; i++) if (b.start(i) <= t && t < b.end(i)) return;
      hls.stopLoad();
      hls.startLoad(t);
    };
    hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => {
      // Start where the server says: it lists first the best rung this
      // machine makes fast enough, where hls.js would guess from a
      // bandwidth it has not measured yet.
      hls.startLevel = data.firstLevel;
      hls.startLoad();
      fillQuality();
      video.play().catch(() => {}); // autoplay may be refused; controls remain
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, markAutoLevel);
    hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, () => fillAudio(hls.audioTracks, hls.audioTrack));
    hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, () => { $('audio').value = String(hls.audioTrack); });
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => fillSubtitles(hls.subtitleTracks, hls.subtitleTrack));
    hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, () => { $('subs').value = String(hls.subtitleTrack); });
    let recovered = false;
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (!data.fatal || hls !== mine) return;
      // A decoder error is often cured by re-attaching the media once
      // (hls.js's documented recovery); a second one is reported.
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !recovered) {
        recovered = true;
        hls.recoverMediaError();
        return;
      }
      const code = data.response && data.response.code ? ` (HTTP ${data.response.code})` : '';
      const msg = `Playback failed: ${data.type} / ${data.details}${code}`;
      const failed = (data.frag && data.frag.url) || (data.context && data.context.url) || data.url;
      stopPlayer();
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR && failed && data.response && data.response.code >= 400) {
        explainLoadError(failed, msg);
      } else {
        showError(msg);
      }
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    // Safari and iOS play HLS themselves; quality is then theirs to choose.
    video.src = url;
    video.addEventListener('loadedmetadata', () => {
      const tracks = video.audioTracks ? Array.from(video.audioTracks) : [];
      const on = tracks.findIndex((t) => t.enabled);
      fillAudio(tracks, on < 0 ? 0 : on);
      const texts = Array.from(video.textTracks).filter((t) => t.kind === 'subtitles' || t.kind === 'captions');
      fillSubtitles(texts, texts.findIndex((t) => t.mode === 'showing'));
    }, { once: true });
    video.play().catch(() => {});
  } else {
    showError('This browser cannot play HLS (no Media Source Extensions and no native HLS).');
  }
}

$('quality').addEventListener('change', (ev) => {
  // currentLevel switches now (flushing the buffer) rather than at the next
  // segment, which is what someone picking a quality expects.
  if (hls) hls.currentLevel = Number(ev.target.value);
  markAutoLevel();
});

// The segment container is a choice for the whole library: kept, and the
// film playing reloaded with it where it was.
$('container').value = localStorage.getItem('hlsd.container') || 'fmp4';
$('container').addEventListener('change', (ev) => {
  localStorage.setItem('hlsd.container', ev.target.value);
  const h = location.hash.replace(/^#/, '');
  if (!h.startsWith('/play/')) return;
  const at = $('video').currentTime;
  showPlayer(h.slice('/play/'.length));
  $('video').addEventListener('loadedmetadata', () => { $('video').currentTime = at; }, { once: true });
});

$('audio').addEventListener('change', (ev) => {
  const i = Number(ev.target.value);
  if (hls) {
    hls.audioTrack = i;
  } else if ($('video').audioTracks) {
    Array.from($('video').audioTracks).forEach((t, j) => { t.enabled = j === i; });
  }
});

$('subs').addEventListener('change', (ev) => {
  const i = Number(ev.target.value);
  if (hls) {
    hls.subtitleDisplay = i >= 0;
    hls.subtitleTrack = i;
  } else {
    const texts = Array.from($('video').textTracks).filter((t) => t.kind === 'subtitles' || t.kind === 'captions');
    texts.forEach((t, j) => { t.mode = j === i ? 'showing' : 'disabled'; });
  }
});

$('video').addEventListener('error', () => {
  // hls.js reports through its own events; this is for native playback.
  const err = $('video').error;
  if (!hls && err && $('video').getAttribute('src')) {
    showError(`Playback failed: ${err.message || 'media error ' + err.code}`);
  }
});

// ---- seek-bar previews ----------------------------------------------------

// The server's trickplay map is WebVTT: each cue names a tile of a sprite
// sheet (sheet-N.jpg#xywh=x,y,w,h) for a span of the timeline.
let thumbs = [];
// infoSeq guards against /info (and what follows from it) arriving after
// the person moved on to another file.
let infoSeq = 0;

function parseThumbs(text, base) {
  const seconds = (s) => s.trim().split(':').reduce((acc, part) => acc * 60 + parseFloat(part), 0);
  const out = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const lines = block.trim().split(/\r?\n/);
    const i = lines.findIndex((l) => l.includes('-->'));
    const m = i >= 0 && /^(.*)#xywh=(\d+),(\d+),(\d+),(\d+)$/.exec((lines[i + 1] || '').trim());
    if (!m) continue;
    const [start, end] = lines[i].split('-->').map(seconds);
    out.push({ start, end, url: new URL(m[1], base).href, x: +m[2], y: +m[3], w: +m[4], h: +m[5] });
  }
  return out;
}

// loadThumbs fetches the map /info advertises. Previews are a nicety:
// without them (turned off, or still being made when the person leaves)
// the player works as before.
async function loadThumbs(info, seq) {
  try {
    if (!info.trickplay) return;
    const url = new URL(withToken(info.trickplay), location.href);
    const res = await fetch(url);
    if (!res.ok || seq !== infoSeq) return;
    const cues = parseThumbs(await res.text(), url);
    if (seq !== infoSeq) return;
    thumbs = cues;
    $('scrub').hidden = cues.length === 0;
  } catch (e) {
    // no previews
  }
}

// loadInfo asks /info once per file for what the page shows beside the
// video: previews, the download menu and why the server copies or
// transcodes. All are extras; without them the player works as before.
async function loadInfo(id) {
  const seq = ++infoSeq;
  let info;
  try {
    info = await getJSON(withToken(`/videos/${encodeURIComponent(id)}/info`));
  } catch (e) {
    return;
  }
  if (seq !== infoSeq) return;
  fillDownload(id, info);
  loadThumbs(info, seq);
  loadDecision(id, seq);
}

// ---- download ---------------------------------------------------------------

// trackLabel names an audio track of /info the way a person knows it.
function trackLabel(a, i) {
  const name = [a.title, a.language].filter(Boolean).join(' \u00b7 ') || `Track ${i + 1}`;
  return a.codec ? `${name} (${a.codec}${Number(a.channels) > 2 ? `, ${Number(a.channels) === 6 ? '5.1' : a.channels + ' ch'}` : ''})` : name;
}

// fillDownload offers the file's qualities and audio tracks for
// download.mp4. The menu lists what /info offers rather than the levels
// hls.js kept: a download is for another device, which may well decode the
// original this browser cannot.
function fillDownload(id, info) {
  const q = info.qualities || [];
  // api.md describes qualities[] as a list; the server sends
  // {"video": [...], "audio": [...]}. Either works.
  const qualities = (Array.isArray(q) ? q : q.video) || [];
  if (!qualities.length) return;
  const src = (info.video || [])[0];
  $('dl-quality').replaceChildren(...qualities.map((name) => el('option', {
    value: name,
    textContent: name === 'original' && src ? `Original (${[src.codec, src.height ? `${src.height}p` : ''].filter(Boolean).join(', ')})` : name,
  })));
  // The original when the server can copy it: the file nearest the source,
  // and the quickest to make. Else the largest rung (the list goes up).
  $('dl-quality').value = qualities.includes('original') ? 'original'
    : qualities.reduce((best, q) => (parseInt(q, 10) > parseInt(best, 10) ? q : best));

  const audio = info.audio || [];
  $('dl-audio').replaceChildren(...audio.map((a, i) => el('option', { value: String(i), textContent: trackLabel(a, i) })));
  const def = audio.findIndex((a) => a.default);
  $('dl-audio').value = String(def < 0 ? 0 : def);
  $('dl-audio-box').hidden = audio.length < 2;
  $('download-box').dataset.id = id;
  $('download-box').dataset.audio = audio.length ? 'yes' : '';
  updateDownloadLink();
  $('download-box').hidden = false;
}

function updateDownloadLink() {
  const box = $('download-box');
  // audio is the track's place among the audio tracks, as in the
  // /audio/{a}/ URLs, not its stream index in the file.
  const audio = box.dataset.audio ? `&audio=${encodeURIComponent($('dl-audio').value)}` : '';
  $('dl-link').href = withToken(`/videos/${encodeURIComponent(box.dataset.id)}/download.mp4?quality=${encodeURIComponent($('dl-quality').value)}${audio}`);
}

$('dl-quality').addEventListener('change', updateDownloadLink);
$('dl-audio').addEventListener('change', updateDownloadLink);

// ---- decision ---------------------------------------------------------------

// loadDecision says under the player whether this browser gets the
// original or a transcode, and why: the question people ask when a file
// they know is 4K plays at 720p. The MPEG-TS master lists H.264 only,
// whatever the browser decodes, so there is nothing to explain there.
async function loadDecision(id, seq) {
  if (!playableCodecs || $('container').value === 'ts') return;
  let d;
  try {
    d = await getJSON(withToken(`/videos/${encodeURIComponent(id)}/decision?codecs=${playableCodecs}`));
  } catch (e) {
    return; // a server without /decision: say nothing
  }
  if (seq !== infoSeq || !d || !d.video) return;
  const why = (t) => ((t.reasons || []).length ? `: ${t.reasons.join('; ')}` : '');
  const v = d.video;
  const line = $('decision');
  line.textContent = v.action === 'copy'
    ? 'This browser gets the original video (no re-encode).'
    : `Transcoded for this browser${v.quality ? ` (${v.quality})` : ''}${why(v)}.`;
  line.title = (d.audio || []).map((a) => `Audio ${a.track + 1}: ${a.action === 'copy' ? 'original' : `transcoded${a.quality ? ` to ${a.quality}` : ''}`}${why(a)}`).join('\n');
  line.hidden = false;
}

const clock = (sec) => humanDuration(sec) || '0:00';

// scrubAt is the position of a pointer on the bar: a time and an x offset.
function scrubAt(ev) {
  const r = $('scrub').getBoundingClientRect();
  const x = Math.min(r.width, Math.max(0, ev.clientX - r.left));
  return { t: (x / r.width) * ($('video').duration || 0), x, width: r.width };
}

function showPreview(ev) {
  const { t, x, width } = scrubAt(ev);
  const c = thumbs.find((c) => t < c.end) || thumbs[thumbs.length - 1];
  if (!c || !isFinite(t)) return;
  const img = $('preview-img');
  img.style.width = `${c.w}px`;
  img.style.height = `${c.h}px`;
  img.style.backgroundImage = `url("${c.url}")`;
  img.style.backgroundPosition = `-${c.x}px -${c.y}px`;
  $('preview-time').textContent = clock(t);
  const p = $('preview');
  p.hidden = false;
  p.style.left = `${Math.max(0, Math.min(x - p.offsetWidth / 2, width - p.offsetWidth))}px`;
}

let scrubbing = false;
const scrub = $('scrub');
scrub.addEventListener('pointermove', (ev) => { if (thumbs.length) showPreview(ev); });
scrub.addEventListener('pointerleave', () => { if (!scrubbing) $('preview').hidden = true; });
scrub.addEventListener('pointerdown', (ev) => {
  // Captured, a finger keeps previewing while it slides off the bar.
  scrubbing = true;
  scrub.setPointerCapture(ev.pointerId);
  showPreview(ev);
});
scrub.addEventListener('pointerup', (ev) => {
  if (!scrubbing) return; // a press that began elsewhere
  scrubbing = false;
  $('preview').hidden = true;
  const { t } = scrubAt(ev);
  if (isFinite(t)) $('video').currentTime = t;
});
scrub.addEventListener('pointercancel', () => { scrubbing = false; $('preview').hidden = true; });
$('video').addEventListener('timeupdate', () => {
  const v = $('video');
  $('scrub-fill').style.width = v.duration ? `${(100 * v.currentTime) / v.duration}%` : '0';
});

$('back').addEventListener('click', () => { location.hash = dirHash(playingDir); });

document.addEventListener('keydown', (ev) => {
  if ($('player').hidden || ev.altKey || ev.ctrlKey || ev.metaKey) return;
  // Leave keys alone where they mean something else (menus, buttons).
  const tag = ev.target.tagName;
  if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA' || tag === 'BUTTON') return;
  const video = $('video');
  switch (ev.key) {
    case ' ':
      if (video.paused) video.play().catch(() => {});
      else video.pause();
      break;
    case 'ArrowLeft':
      video.currentTime = Math.max(0, video.currentTime - 10);
      break;
    case 'ArrowRight':
      if (isFinite(video.duration)) video.currentTime = Math.min(video.duration, video.currentTime + 10);
      else video.currentTime += 10;
      break;
    case 'ArrowUp':
      video.volume = Math.min(1, video.volume + 0.1);
      break;
    case 'ArrowDown':
      video.volume = Math.max(0, video.volume - 0.1);
      break;
    case 'm':
      video.muted = !video.muted;
      break;
    case 'f':
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
      else video.requestFullscreen().catch(() => {});
      break;
    default:
      return;
  }
  // Stop the page from scrolling, and the focused video element from
  // handling the same key a second time.
  ev.preventDefault();
}, true);

// ---- activity -------------------------------------------------------------
// What the server is doing: its encoder heads, background jobs and
// downloads, polled every second while the view is open.

let activityTimer = null;

function stopActivity() {
  clearTimeout(activityTimer);
  activityTimer = null;
  $('activity').hidden = true;
}

function showActivity() {
  stopPlayer();
  stopActivity();
  clearError();
  $('library').hidden = true;
  $('player').hidden = true;
  $('activity').hidden = false;
  document.title = 'Activity - hlsd';
  renderCrumbs('');
  const poll = async () => {
    try {
      renderActivity(await getJSON(withToken('/api/activity')));
      clearError();
    } catch (e) {
      showError(e.message);
    }
    if (!$('activity').hidden) activityTimer = setTimeout(poll, 1000);
  };
  poll();
}

const el = (tag, props = {}, ...kids) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...kids);
  return e;
};

const seconds = (s) => (s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${Math.round(s)} s`);

function renderActivity(a) {
  const heads = a.heads || [];
  $('heads-empty').hidden = heads.length > 0;
  $('heads').hidden = heads.length === 0;
  $('heads').tBodies[0].replaceChildren(...heads.map((h) => el('tr', {},
    el('td', { textContent: h.file }),
    el('td', { textContent: h.variant + (h.hardware ? ' (GPU)' : '') }),
    el('td', { textContent: `${h.segment} (from ${h.start})` }),
    el('td', { textContent: (h.clients || []).length ? h.clients.join(', ') : '\u2013' }),
    el('td', { textContent: h.paused ? 'paused' : `${h.speed.toFixed(1)}\u00d7` }),
    el('td', { textContent: `${h.cpu.toFixed(1)} s` }))));

  const jobs = a.jobs || [];
  $('jobs-empty').hidden = jobs.length > 0;
  $('jobs').replaceChildren(...jobs.map((j) => {
    const live = j.state === 'queued' || j.state === 'running';
    const frac = j.total > 0 ? Math.min(1, j.done / j.total) : 0;
    let eta = '';
    if (j.state === 'running' && j.speed > 0 && j.total > j.done) eta = `, about ${seconds((j.total - j.done) / j.speed)} left`;
    const what = j.type === 'import' ? `Import into /${j.folder || ''}` : `Prepare ${(j.qualities || []).join(', ')}`;
    const bar = el('progress', { max: 1, value: frac, className: 'job-progress' });
    bar.dataset.job = j.id;
    const head = el('div', { className: 'job-head' },
      el('strong', { textContent: what }),
      el('span', { className: `job-state ${j.state}`, textContent: j.state }),
      el('span', { className: 'muted', textContent: `${seconds(j.done)} of ${seconds(j.total)}${j.bytes ? `, ${(j.bytes / 1e6).toFixed(1)} MB` : ''}${j.speed && j.state === 'running' ? `, ${j.speed.toFixed(1)}\u00d7` : ''}${eta}` }));
    if (live) {
      const cancel = el('button', { type: 'button', textContent: 'Cancel' });
      cancel.addEventListener('click', async () => {
        cancel.disabled = true;
        const res = await fetch(withToken('/api/jobs/' + encodeURIComponent(j.id)), { method: 'DELETE' });
        if (!res.ok) showError(await apiError(res));
      });
      head.append(cancel);
    }
    const items = el('ul', { className: 'job-items' }, ...(j.items || []).map((it) => el('li', {},
      el('span', { className: `job-state ${it.state}`, textContent: it.state }), ' ',
      el('span', { textContent: it.file || it.url || '' }),
      it.error ? el('div', { className: 'job-error', textContent: it.error }) : '')));
    const li = el('li', { className: 'job' }, head, bar, items);
    if (j.note) li.append(el('div', { className: 'muted', textContent: j.note }));
    return li;
  }));

  // download.mp4 files being made: done and total are media seconds,
  // bytes the size of the MP4 so far (readers get it as it grows).
  const downloads = a.downloads || [];
  $('downloads-empty').hidden = downloads.length > 0;
  $('downloads').hidden = downloads.length === 0;
  $('downloads').tBodies[0].replaceChildren(...downloads.map((d) => {
    const frac = d.complete ? 1 : d.total > 0 ? Math.min(1, d.done / d.total) : 0;
    const bar = el('progress', { max: 1, value: frac, className: 'download-progress' });
    bar.dataset.download = `${d.file}|${d.quality}|${d.audio}`;
    const readers = d.readers > 0 ? `, ${d.readers} ${d.readers === 1 ? 'reader' : 'readers'}` : '';
    return el('tr', {},
      el('td', { textContent: d.file }),
      el('td', { textContent: d.quality }),
      el('td', { textContent: d.audio === undefined || d.audio === null ? '\u2013' : `Track ${d.audio + 1}` }),
      el('td', {}, bar, ' ', el('span', { className: 'muted', textContent: `${seconds(d.done || 0)} of ${seconds(d.total || 0)}` })),
      el('td', { textContent: humanSize(d.bytes || 0) }),
      el('td', { className: `job-state ${d.complete ? 'done' : 'running'}`, textContent: (d.complete ? 'complete' : 'running') + readers }));
  }));
}

// ---- routing --------------------------------------------------------------

function route() {
  const h = location.hash.replace(/^#/, '');
  if (h === '/activity') {
    showActivity();
    return;
  }
  if (h.startsWith('/play/')) {
    showPlayer(h.slice('/play/'.length));
    return;
  }
  let dir = '';
  if (h.startsWith('/dir/')) {
    try {
      dir = decodeURIComponent(h.slice('/dir/'.length));
    } catch (e) {
      dir = '';
    }
  }
  clearError();
  showLibrary(dir);
}

window.addEventListener('hashchange', route);
route();
