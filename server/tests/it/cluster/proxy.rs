//! A TCP proxy between one node and PostgreSQL, so a test can cut that node off alone:
//! [`Proxy::reset`] closes every connection with a reset and refuses new ones (a firewall
//! rejecting); [`Proxy::blackhole`] keeps connections open but forwards nothing, old or
//! new (a network that drops packets: the node hears nothing, not even an error);
//! [`Proxy::restore`] forwards again (connections held in the black hole are reset: their
//! state is lost, as after a real partition).

use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Open,
    Reset,
    Blackhole,
}

pub struct Proxy {
    pub port: u16,
    mode: watch::Sender<Mode>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = listener.local_addr().expect("bound").port();
        let (mode, watching) = watch::channel(Mode::Open);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let _ = client.set_nodelay(true);
                let mode = watching.clone();
                tokio::spawn(connection(client, upstream, mode));
            }
        });
        Proxy { port, mode, task }
    }

    pub fn reset(&self) {
        self.mode.send_replace(Mode::Reset);
    }

    pub fn blackhole(&self) {
        self.mode.send_replace(Mode::Blackhole);
    }

    pub fn restore(&self) {
        self.mode.send_replace(Mode::Open);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Closes with a reset (RST), as a rejecting firewall or a dead peer's kernel does.
fn slam(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn connection(mut client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    // New connections meet the current mode first.
    let now = *mode.borrow_and_update();
    match now {
        Mode::Reset => return slam(client),
        Mode::Blackhole => {
            // Accepted, and then silence until the cut ends.
            let _ = mode.wait_for(|m| *m != Mode::Blackhole).await;
            return slam(client);
        }
        Mode::Open => {}
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return slam(client);
    };
    let _ = server.set_nodelay(true);
    let changed = {
        let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
        tokio::select! {
            _ = copy => return,
            m = mode.wait_for(|m| *m != Mode::Open) => m.map(|m| *m).unwrap_or(Mode::Reset),
        }
    };
    if changed == Mode::Blackhole {
        // Hold both ends open, forwarding nothing.
        let _ = mode.wait_for(|m| *m != Mode::Blackhole).await;
    }
    slam(server);
    slam(client);
}
