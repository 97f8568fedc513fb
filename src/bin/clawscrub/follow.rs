//! `clawscrub follow`: the follow loop, woken by inotify (polling as a fallback) and by
//! signals, with a Prometheus endpoint on loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use clawscrub::follow::{FollowOptions, Follower, LineFormat};
use clawscrub::Scrubber;

use crate::{report as fail, Exit, FollowArgs};

pub fn follow(scrubber: &Scrubber, args: &FollowArgs) -> Result<(), Exit> {
    let options = FollowOptions {
        patterns: args.paths.clone(),
        from_beginning: args.from_beginning,
        format: if args.json {
            LineFormat::Json
        } else {
            LineFormat::Plain
        },
        out_dir: args.out_dir.clone(),
        state: args.state.clone(),
        partial_timeout: Duration::from_secs_f64(args.partial_timeout),
    };
    let mut follower = Follower::new(scrubber, options).map_err(|e| fail(&e))?;

    let (wake, woken) = mpsc::channel::<()>();
    let stop = Arc::new(AtomicBool::new(false));
    let reopen = Arc::new(AtomicBool::new(false));
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]).map_err(|e| {
            eprintln!("clawscrub: cannot handle signals: {e}");
            Exit(2)
        })?;
    {
        let (stop, reopen, wake) = (stop.clone(), reopen.clone(), wake.clone());
        std::thread::spawn(move || {
            for signal in signals.forever() {
                match signal {
                    SIGHUP => reopen.store(true, Ordering::SeqCst),
                    _ => stop.store(true, Ordering::SeqCst),
                }
                let _ = wake.send(());
            }
        });
    }
    // inotify on the followed directories; without it (or for a directory that does not
    // exist yet) the poll interval alone drives the loop.
    let watch_wake = wake.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Our own reads show up as access events: waking on them would spin.
        if event.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
            let _ = watch_wake.send(());
        }
    })
    .ok();
    if let Some(w) = watcher.as_mut() {
        for dir in follower.dirs() {
            if let Err(e) = w.watch(&dir, RecursiveMode::NonRecursive) {
                eprintln!(
                    "clawscrub: watching {}: {e}; polling instead",
                    dir.display()
                );
            }
        }
    }
    let metrics = match args.metrics_addr {
        Some(addr) => Some(serve_metrics(addr)?),
        None => None,
    };
    let poll = Duration::from_secs_f64(args.poll_interval);
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if reopen.swap(false, Ordering::SeqCst) {
            follower.reopen_outputs();
        }
        let wrote = follower.tick().map_err(|e| fail(&e))?;
        follower.checkpoint().map_err(|e| fail(&e))?;
        if let Some(m) = &metrics {
            if let Ok(mut text) = m.lock() {
                *text = follower.metrics();
            }
        }
        if stopping {
            return Ok(());
        }
        if wrote {
            continue;
        }
        let mut timeout = poll;
        if let Some(deadline) = follower.next_deadline() {
            timeout = timeout.min(deadline.saturating_duration_since(Instant::now()));
        }
        if woken.recv_timeout(timeout).is_ok() {
            // Coalesce a burst of events into one tick.
            while woken.try_recv().is_ok() {}
        }
    }
}

/// Serves the latest metrics text over HTTP on a loopback address.
fn serve_metrics(addr: SocketAddr) -> Result<Arc<Mutex<String>>, Exit> {
    if !addr.ip().is_loopback() {
        eprintln!(
            "clawscrub: --metrics-addr must be a loopback address (127.0.0.1:PORT or [::1]:PORT)"
        );
        return Err(Exit(2));
    }
    let listener = TcpListener::bind(addr).map_err(|e| {
        eprintln!("clawscrub: --metrics-addr {addr}: {e}");
        Exit(2)
    })?;
    let text = Arc::new(Mutex::new(String::new()));
    let shared = text.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let body = shared.lock().map(|t| t.clone()).unwrap_or_default();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Ok(text)
}
