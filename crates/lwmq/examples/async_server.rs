//! A request/response service over 100 `ipc://` channels on one tokio
//! runtime thread (feature `tokio`).
//!
//! ```text
//! cargo run -p lwmq --features tokio --example async_server
//! ```
//!
//! The server opens 100 channels (`<base>/0` .. `<base>/99`), one task
//! each on a current-thread runtime: no thread waits for any channel (the
//! tasks await `receive_async`, which waits on each channel's readiness
//! descriptor in tokio's reactor). It then starts the clients, another
//! process (this program with `client BASE`), which sends 20 requests on
//! each channel and checks every answer. Each server task answers
//! `re: <request>`, then, after the last request, flushes asynchronously
//! (`flush_async`) so that its answers are taken before it closes.

use std::process::Command;
use std::time::{Duration, Instant};

use lwmq::{Channel, Endpoint, Message, MonoQueue, Priority, Role, Timeout};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Channels served by the one runtime thread.
const CHANNELS: usize = 100;
/// Requests per channel.
const REQUESTS: u32 = 20;
/// How long anything may take before the example gives up.
const PATIENCE: Duration = Duration::from_secs(60);

fn text(m: &Message) -> String {
    m.frame(0)
        .map(|f| String::from_utf8_lossy(f.data()).into_owned())
        .unwrap_or_default()
}

/// One channel's task: answer `REQUESTS` requests, then flush.
async fn serve(mut ch: Channel, replies: MonoQueue) -> Result<u32, BoxError> {
    for _ in 0..REQUESTS {
        let request = ch.receive_async().await?;
        let reply = Message::from(format!("re: {}", text(&request)));
        // Below the queue's high-water mark (20 of 1000): never waits.
        replies.post(reply, Timeout::ZERO)?;
    }
    tokio::time::timeout(PATIENCE, ch.flush_async()).await??;
    Ok(REQUESTS)
}

async fn server(base: &str) -> Result<(), BoxError> {
    let mut tasks = Vec::with_capacity(CHANNELS);
    for i in 0..CHANNELS {
        let mut b = Channel::builder().transport(Endpoint::new(format!("{base}/{i}"))?)?;
        let replies = b.mono_queue(Priority::Normal)?;
        let ch = b.open(Role::Server)?;
        tasks.push(tokio::spawn(serve(ch, replies)));
    }
    let start = Instant::now();
    let mut clients = Command::new(std::env::current_exe()?)
        .args(["client", base])
        .spawn()?;
    let mut answered = 0;
    for t in tasks {
        answered += tokio::time::timeout(PATIENCE, t).await???;
    }
    let status = tokio::task::spawn_blocking(move || clients.wait()).await??;
    if !status.success() {
        return Err(format!("clients failed: {status}").into());
    }
    println!(
        "server: answered {answered} requests on {CHANNELS} channels from one thread in {:?}",
        start.elapsed()
    );
    Ok(())
}

/// The clients: every channel from one thread, synchronously.
fn clients(base: &str) -> Result<(), BoxError> {
    let mut open = Vec::with_capacity(CHANNELS);
    for i in 0..CHANNELS {
        let mut b = Channel::builder().transport(Endpoint::new(format!("{base}/{i}"))?)?;
        let requests = b.mono_queue(Priority::Normal)?;
        open.push((b.open(Role::Client)?, requests));
    }
    for r in 0..REQUESTS {
        for (i, (_, requests)) in open.iter().enumerate() {
            requests.post(Message::from(format!("{i}.{r}")), Timeout::NEVER)?;
        }
    }
    for (i, (ch, _)) in open.iter_mut().enumerate() {
        for r in 0..REQUESTS {
            let reply = text(&ch.receive(PATIENCE)?);
            if reply != format!("re: {i}.{r}") {
                return Err(format!("channel {i}: reply {reply:?} to request {r}").into());
            }
        }
    }
    for (ch, _) in open {
        ch.close(PATIENCE)?;
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [role, base] if role == "client" => clients(base),
        [] => {
            let base = format!("ipc://lwmq-example/async-server/{}", std::process::id());
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(BoxError::from)
                .and_then(|rt| rt.block_on(server(&base)))
        }
        _ => Err("usage: async_server [client BASE]".into()),
    };
    if let Err(e) = result {
        eprintln!("async_server: {e}");
        std::process::exit(1);
    }
}
