//! Integration tests: the real `broadcaster` binary against a private
//! nats-server and real HTTP receivers on loopback.
