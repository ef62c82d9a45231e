//! A TCP forwarder on loopback whose target can be switched, as a
//! Kubernetes Service moves to other endpoints: CloudNativePG's `-rw`
//! Service follows whichever instance is the primary, and the app only
//! ever connects to the Service.

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Forwards each connection to `127.0.0.1:<target>`; stops when dropped.
pub struct Forwarder {
    port: u16,
    target: watch::Sender<u16>,
    accepting: JoinHandle<()>,
}

impl Forwarder {
    /// Listens on a free loopback port, forwarding to `target`.
    pub async fn start(target: u16) -> anyhow::Result<Forwarder> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let (sender, receiver) = watch::channel(target);
        let accepting = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut target = receiver.clone();
                tokio::spawn(async move {
                    let port = *target.borrow_and_update();
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", port)).await else {
                        // Refused: the client sees its connection closed,
                        // as when a Service has no ready endpoint.
                        return;
                    };
                    // A switch ends the connections to the old target, as
                    // its endpoint leaving the Service would (and the old
                    // primary is gone anyway).
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = target.changed() => {}
                    }
                });
            }
        });
        Ok(Forwarder {
            port,
            target: sender,
            accepting,
        })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// New connections go to `127.0.0.1:<port>`; open ones are closed.
    pub fn switch_to(&self, port: u16) {
        self.target.send_replace(port);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::Forwarder;

    /// A server that answers each connection with `name` and closes.
    async fn named(name: &'static str) -> u16 {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(name.as_bytes()).await;
            }
        });
        port
    }

    async fn read_through(forwarder: &Forwarder) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", forwarder.port()))
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn connections_follow_the_switch_and_old_ones_are_closed() {
        let (first, second) = (named("first").await, named("second").await);
        let forwarder = Forwarder::start(first).await.unwrap();
        assert_eq!(read_through(&forwarder).await, "first");

        let idle = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        forwarder.switch_to(idle.local_addr().unwrap().port());
        let mut open = TcpStream::connect(("127.0.0.1", forwarder.port()))
            .await
            .unwrap();
        let _held = idle.accept().await.unwrap();
        forwarder.switch_to(second);
        let mut rest = Vec::new();
        open.read_to_end(&mut rest).await.unwrap();
        assert!(
            rest.is_empty(),
            "the open connection was closed by the switch"
        );
        assert_eq!(read_through(&forwarder).await, "second");
    }
}
