//! Request/response between two processes.
//!
//! ```text
//! cargo run -p lwmq --example req_rep -- server ipc://example/req-rep
//! cargo run -p lwmq --example req_rep -- client ipc://example/req-rep 5
//! ```
//!
//! The server answers each request with `re: <request>` until a client
//! says `bye`; the client sends N requests, checks each answer, then says
//! `bye`. Either may start first: the client connects in the background.

use std::time::Duration;

use lwmq::{Channel, Endpoint, Message, Priority, Role, Timeout};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long each side waits for the other before it gives up.
const PATIENCE: Duration = Duration::from_secs(30);

fn text(m: &Message) -> String {
    m.frame(0)
        .map(|f| String::from_utf8_lossy(f.data()).into_owned())
        .unwrap_or_default()
}

fn server(address: &str) -> Result<(), BoxError> {
    let mut b = Channel::builder().transport(Endpoint::new(address)?)?;
    let replies = b.mono_queue(Priority::Normal)?;
    let mut ch = b.open(Role::Server)?;
    println!("server: listening on {address}");
    loop {
        let request = ch.receive(PATIENCE)?;
        let request = text(&request);
        if request == "bye" {
            println!("server: bye");
            break;
        }
        println!("server: {request}");
        replies.post(Message::from(format!("re: {request}")), Timeout::NEVER)?;
    }
    // Waits for the last reply to be taken (close reports it if not).
    ch.close(PATIENCE)?;
    Ok(())
}

fn client(address: &str, count: u32) -> Result<(), BoxError> {
    let mut b = Channel::builder().transport(Endpoint::new(address)?)?;
    let requests = b.mono_queue(Priority::Normal)?;
    let mut ch = b.open(Role::Client)?;
    for i in 0..count {
        let request = format!("request {i}");
        requests.post(Message::from(request.clone()), Timeout::NEVER)?;
        let reply = text(&ch.receive(PATIENCE)?);
        if reply != format!("re: {request}") {
            return Err(format!("client: unexpected reply {reply:?} to {request:?}").into());
        }
        println!("client: {reply}");
    }
    requests.post(Message::from("bye"), Timeout::NEVER)?;
    ch.close(PATIENCE)?;
    println!("client: done");
    Ok(())
}

/// Runs the example with its command-line arguments.
pub fn run(args: &[String]) -> Result<(), BoxError> {
    match args {
        [role, address] if role == "server" => server(address),
        [role, address, count] if role == "client" => client(address, count.parse()?),
        _ => Err("usage: req_rep server ADDRESS | client ADDRESS COUNT".into()),
    }
}

#[allow(dead_code)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("req_rep: {e}");
        std::process::exit(1);
    }
}
