//! Headless Firefox ESR, set up as Tor Browser is for names: its profile,
//! a screenshot of a page, and the screenshot's colours (decoded with
//! python3), which tell the page from an error page.

use crate::helpers::{lookup_name, redirects};
use crate::story::Story;
use onions::tor::control::StreamId;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::tor::Daemon;
use testkit::tornet::{run, spawn};

/// How long Firefox may take for a screenshot before it is killed (it
/// takes 1-3 s here; on a network error page `--screenshot` never
/// finishes, so that failure shows as a kill at this limit).
const FIREFOX_LIMIT: Duration = Duration::from_secs(60);

/// How long decoding a screenshot may take.
const DECODE_LIMIT: Duration = Duration::from_secs(60);

/// A Firefox profile set up as Tor Browser's is for names: every request
/// through the SOCKS port with the host name sent to Tor (remote DNS, no
/// proxy exceptions, not even localhost), no search-engine or `www.`
/// fixups of a `.tor` name, and no background traffic of its own.
fn firefox_profile(dir: &Path, socks: SocketAddr) {
    std::fs::create_dir_all(dir).expect("profile directory");
    let prefs: Vec<(&str, String)> = vec![
        ("network.proxy.type", "1".into()),
        ("network.proxy.socks", format!("\"{}\"", socks.ip())),
        ("network.proxy.socks_port", socks.port().to_string()),
        ("network.proxy.socks_version", "5".into()),
        ("network.proxy.socks_remote_dns", "true".into()),
        ("network.proxy.no_proxies_on", "\"\"".into()),
        ("network.proxy.allow_hijacking_localhost", "true".into()),
        ("network.proxy.failover_direct", "false".into()),
        ("browser.fixup.domainsuffixwhitelist.tor", "true".into()),
        ("browser.fixup.alternate.enabled", "false".into()),
        ("keyword.enabled", "false".into()),
        ("network.dns.blockDotOnion", "false".into()),
        ("network.trr.mode", "5".into()),
        ("network.dns.disablePrefetch", "true".into()),
        ("network.prefetch-next", "false".into()),
        ("network.http.speculative-parallel-limit", "0".into()),
        ("app.update.enabled", "false".into()),
        ("app.update.auto", "false".into()),
        ("datareporting.healthreport.uploadEnabled", "false".into()),
        ("datareporting.policy.dataSubmissionEnabled", "false".into()),
        ("toolkit.telemetry.enabled", "false".into()),
        ("toolkit.telemetry.unified", "false".into()),
        ("toolkit.telemetry.archive.enabled", "false".into()),
        ("browser.safebrowsing.malware.enabled", "false".into()),
        ("browser.safebrowsing.phishing.enabled", "false".into()),
        ("browser.safebrowsing.downloads.enabled", "false".into()),
        (
            "browser.safebrowsing.downloads.remote.enabled",
            "false".into(),
        ),
        ("browser.safebrowsing.blockedURIs.enabled", "false".into()),
        (
            "browser.safebrowsing.provider.mozilla.updateURL",
            "\"\"".into(),
        ),
        ("network.captive-portal-service.enabled", "false".into()),
        ("network.connectivity-service.enabled", "false".into()),
        ("extensions.update.enabled", "false".into()),
        ("extensions.getAddons.cache.enabled", "false".into()),
        ("extensions.blocklist.enabled", "false".into()),
        ("browser.search.update", "false".into()),
        ("browser.shell.checkDefaultBrowser", "false".into()),
        (
            "browser.startup.homepage_override.mstone",
            "\"ignore\"".into(),
        ),
        ("browser.aboutwelcome.enabled", "false".into()),
        ("browser.newtabpage.enabled", "false".into()),
        ("browser.region.update.enabled", "false".into()),
        ("dom.push.connection.enabled", "false".into()),
        ("services.settings.server", "\"http://127.0.0.1:9/\"".into()),
        ("media.gmp-manager.updateEnabled", "false".into()),
    ];
    let text: String = prefs
        .iter()
        .map(|(key, value)| format!("user_pref(\"{key}\", {value});\n"))
        .collect();
    std::fs::write(dir.join("user.js"), text).expect("user.js");
}

/// Decodes a PNG (8-bit RGB or RGBA, as Firefox writes screenshots) with
/// python3's zlib and prints `WIDTH HEIGHT MATCHING TOP_RGB TOP_COUNT`:
/// the pixels within a tolerance of the wanted colour, and the commonest
/// colour.
const PNG_COUNT: &str = r#"
import struct, sys, zlib
from collections import Counter
path, want, tol = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3])
data = open(path, 'rb').read()
if data[:8] != b'\x89PNG\r\n\x1a\n':
    sys.exit(path + ': not a PNG file')
pos, idat, head = 8, [], None
while pos + 8 <= len(data):
    size, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + size]
    pos += 12 + size
    if kind == b'IHDR':
        head = struct.unpack('>IIBBBBB', body)
    elif kind == b'IDAT':
        idat.append(body)
    elif kind == b'IEND':
        break
if head is None:
    sys.exit(path + ': no IHDR')
width, height, depth, ctype, _, _, interlace = head
if depth != 8 or ctype not in (2, 6) or interlace:
    sys.exit(f'{path}: unsupported PNG (depth {depth}, colour type {ctype}, interlace {interlace})')
bpp = 3 if ctype == 2 else 4
stride = width * bpp
raw = zlib.decompress(b''.join(idat))
prev = bytearray(stride)
counts = Counter()
for y in range(height):
    start = y * (stride + 1)
    kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
    if kind == 1:
        for i in range(bpp, stride):
            line[i] = (line[i] + line[i - bpp]) & 255
    elif kind == 2:
        for i in range(stride):
            line[i] = (line[i] + prev[i]) & 255
    elif kind == 3:
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + (left + prev[i]) // 2) & 255
    elif kind == 4:
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    elif kind != 0:
        sys.exit(f'{path}: bad filter type {kind} in row {y}')
    for x in range(0, stride, bpp):
        counts[bytes(line[x:x + 3])] += 1
    prev = line
match = sum(n for rgb, n in counts.items() if all(abs(rgb[i] - want[i]) <= tol for i in range(3)))
top, top_n = counts.most_common(1)[0]
print(width, height, match, top.hex(), top_n)
"#;

/// A screenshot's pixels: (total, those of `color` ± 8, the commonest
/// colour in hex).
fn count_color(dir: &Path, png: &Path, color: &str) -> (u64, u64, String) {
    let got = run(
        dir,
        "python3",
        [
            OsStr::new("-c"),
            OsStr::new(PNG_COUNT),
            png.as_os_str(),
            OsStr::new(color),
            OsStr::new("8"),
        ],
        DECODE_LIMIT,
    );
    assert!(
        got.success(),
        "decoding {} with python3: {}",
        png.display(),
        got.describe()
    );
    let fields: Vec<&str> = got.stdout.split_whitespace().collect();
    let number = |i: usize| -> u64 {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .unwrap_or_else(|| panic!("python3 printed {:?}", got.stdout))
    };
    let total = number(0) * number(1);
    (total, number(2), fields.get(3).unwrap_or(&"?").to_string())
}

/// Screenshots `http://host/` with headless Firefox ESR set up as Tor Browser is;
/// the picture must be mostly `color` (the page's background), which an
/// error page is not. Returns the screenshot's path.
pub(crate) fn screenshot(story: &mut Story, daemon: &Daemon, host: &str, color: &str) -> PathBuf {
    let dir = story.scratch.join(format!("firefox-{host}"));
    let profile = dir.join("profile");
    firefox_profile(&profile, story.socks);
    let shot = story.scratch.join(format!("{host}.png"));
    let url = format!("http://{host}/");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("a home for firefox");
    let mark = story.log.mark();
    let firefox = spawn(
        &dir,
        "firefox-esr",
        [
            OsStr::new("--headless"),
            OsStr::new("--no-remote"),
            OsStr::new("--profile"),
            profile.as_os_str(),
            OsStr::new("--screenshot"),
            shot.as_os_str(),
            OsStr::new("--window-size=1024,768"),
            OsStr::new(&url),
        ],
        &[
            ("HOME", home.as_os_str()),
            ("MOZ_HEADLESS", OsStr::new("1")),
        ],
        true,
    )
    .finish(FIREFOX_LIMIT);
    let kept = std::env::temp_dir().join(format!(
        "onions-end-to-end-{}-{host}.png",
        std::process::id()
    ));
    let keep = || {
        let _ = std::fs::copy(&shot, &kept);
        kept.display().to_string()
    };
    assert!(
        firefox.success() && shot.is_file(),
        "firefox-esr --screenshot {url}: {}\n(headless Firefox takes no screenshot of a \
         network error page: it waits until killed)\nscreenshot (if any) copied to {}\n\
         daemon log:\n{}",
        firefox.describe(),
        keep(),
        daemon.log()
    );
    let (total, matching, top) = count_color(&dir, &shot, color);
    assert!(
        matching * 2 > total,
        "the screenshot of {url} is not the page (background #{color}): {matching} of {total} \
         pixels match, the commonest colour is #{top}: an error page? Screenshot copied to {}\n\
         daemon log:\n{}",
        keep(),
        daemon.log()
    );
    // Firefox's streams for the name: the daemon redirected them to the
    // page's service, and none left as a name.
    let ids = story.log.new_streams_to(mark, host);
    let log = daemon.log();
    let lookup = lookup_name(host);
    let handled: Vec<(String, String, String)> = redirects(&log)
        .into_iter()
        .filter(|(id, name, _)| *name == lookup && ids.iter().any(|i| i.as_str() == id))
        .collect();
    assert!(
        !handled.is_empty(),
        "no daemon log line redirects Firefox's streams {ids:?} for {host}:\n{log}"
    );
    story.log.assert_no_leak(&format!("firefox {url}"));
    eprintln!(
        "  firefox {url}: {:.1} s, {matching} of {total} pixels #{color}; streams {:?} -> {}",
        firefox.took.as_secs_f64(),
        ids.iter().map(StreamId::as_str).collect::<Vec<_>>(),
        handled[0].2
    );
    shot
}
