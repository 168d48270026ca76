//! Real nats-server processes of both supported lines.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::Duration;

use warden_testkit::{NatsServer, NatsServerBinary, ServerLine, free_port};

/// Connects to the server's client port and returns the INFO line it sends first.
fn read_info(port: u16) -> String {
    let addr = ([127, 0, 0, 1], port).into();
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    assert!(line.starts_with("INFO {"), "not an INFO line: {line:?}");
    line
}

fn expected_version(line: ServerLine) -> &'static str {
    match line {
        ServerLine::V2_9 => "\"version\":\"2.9.10\"",
        ServerLine::V2_15 => "\"version\":\"2.15.",
    }
}

fn plain_server_stops_and_restarts(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    assert_eq!(bin.line, line);
    assert!(bin.version.starts_with(line.version_prefix()), "{bin:?}");

    let mut server = NatsServer::start_with_body(&bin, "").expect("start");
    assert_eq!(server.line(), line);
    assert_eq!(server.version(), bin.version);
    let port = server.port();
    assert_ne!(port, 4222, "tests must never use the shared server's port");
    assert_eq!(server.url(), format!("nats://127.0.0.1:{port}"));
    assert!(server.pid().is_some());
    assert!(server.log().contains("Server is ready"));

    let info = read_info(port);
    assert!(info.contains(expected_version(line)), "{info}");
    assert!(
        info.contains(&format!("\"version\":\"{}\"", bin.version)),
        "{info}"
    );

    server.stop();
    assert_eq!(server.pid(), None);
    let addr = ([127, 0, 0, 1], port).into();
    let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(2));
    assert!(refused.is_err(), "port {port} still accepts after stop()");
    assert!(
        server.dir().join("server.log").is_file(),
        "log kept after stop"
    );

    server.restart().expect("restart");
    assert_eq!(server.port(), port, "restart keeps the port");
    assert!(server.pid().is_some());
    let info = read_info(port);
    assert!(info.contains(expected_version(line)), "{info}");
    // Both runs are in the log.
    assert_eq!(server.log().matches("Server is ready").count(), 2);
}

#[test]
fn v2_9_plain_server_stops_and_restarts() {
    plain_server_stops_and_restarts(ServerLine::V2_9);
}

#[test]
fn v2_15_plain_server_stops_and_restarts() {
    plain_server_stops_and_restarts(ServerLine::V2_15);
}

#[test]
fn all_is_oldest_first() {
    let all = NatsServerBinary::all();
    let lines: Vec<_> = all.iter().map(|b| b.line).collect();
    assert_eq!(lines, [ServerLine::V2_9, ServerLine::V2_15]);
}

#[test]
fn bad_config_is_an_error_with_the_log_tail() {
    for bin in NatsServerBinary::all() {
        let dir = tempfile::tempdir().unwrap();
        let config = format!("host: 127.0.0.1\nport: {}\nbogus {{{{{{ \n", free_port());
        let err = NatsServer::start(&bin, dir.path(), &config)
            .expect_err("a config that does not parse must not start");
        let msg = err.to_string();
        assert!(msg.contains("log tail"), "{msg}");
        assert!(msg.contains("Parse error"), "{bin:?}: {msg}");
    }
}

#[test]
fn port_in_use_is_an_error_with_the_log_tail() {
    for bin in NatsServerBinary::all() {
        let first = NatsServer::start_with_body(&bin, "").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = format!("host: 127.0.0.1\nport: {}\n", first.port());
        let err = NatsServer::start(&bin, dir.path(), &config)
            .expect_err("a second server on the same port must not start");
        let msg = err.to_string();
        assert!(msg.contains("address already in use"), "{bin:?}: {msg}");
        assert!(msg.contains("Starting nats-server"), "{bin:?}: {msg}");
    }
}

#[test]
fn start_with_own_config_and_wait_for_log() {
    let bin = NatsServerBinary::get(ServerLine::V2_15);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!("listen: \"127.0.0.1:{port}\"\nserver_name: testkit\n");
    let server = NatsServer::start(&bin, dir.path(), &config).unwrap();
    assert_eq!(server.port(), port);
    assert_eq!(server.dir(), dir.path());
    assert!(server.wait_for_log("Server is ready", Duration::from_secs(1)));
    assert!(!server.wait_for_log("no such line", Duration::from_millis(100)));
    drop(server);
    // The caller's directory and the log survive the server.
    assert!(dir.path().join("server.log").is_file());
}

#[test]
fn drop_kills_the_process() {
    let bin = NatsServerBinary::get(ServerLine::V2_9);
    let server = NatsServer::start_with_body(&bin, "").unwrap();
    let port = server.port();
    let dir = server.dir().to_path_buf();
    drop(server);
    let addr = ([127, 0, 0, 1], port).into();
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err());
    assert!(
        !dir.exists(),
        "start_with_body's temp dir is removed on drop"
    );
}

#[test]
fn free_ports_are_loopback_and_bindable() {
    let port = free_port();
    assert_ne!(port, 0);
    std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    // Below the range the kernel gives outgoing connections, so no client takes it meanwhile.
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let ephemeral_start: u16 = range.split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        port < ephemeral_start,
        "{port} is in the ephemeral range {range}"
    );
    // Reserved for the run: never handed out twice, in this process or another.
    let picks: std::collections::HashSet<u16> = (0..20).map(|_| free_port()).collect();
    assert_eq!(picks.len(), 20, "{picks:?}");
    let reservations = std::env::temp_dir().join("warden-test-ports");
    for p in picks.iter().chain([&port]) {
        assert!(
            reservations.join(p.to_string()).is_file(),
            "{p} not reserved"
        );
    }
}
