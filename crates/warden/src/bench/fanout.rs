//! The floor of `warden bench chat`: a websocket fan-out that speaks enough of the rooms
//! protocol for the bench's clients and does nothing else. It has the gateway's transport
//! (axum's websockets with the same buffer sizes, one task per socket, a broadcast ring
//! per room, queued frames written together) but checks no token, stores nothing and
//! publishes nothing on NATS: a message is broadcast to its room the moment it is read.
//! Its socket buffers, ring size and frames per write are the gateway's own constants.
//!
//! `warden bench chat --floor` runs the same workload against it right after the gateway,
//! as a separate process like the gateway, so the gateway's figures read as a ratio of
//! what websockets alone reach with the same clients on the same machine.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::TryRecvError;
use warden_chat::protocol::{
    ClientFrame, ErrorCode, MessageOut, ServerFrame, Status, parse_client,
};

use crate::chat::hub::ROOM_BUFFER;
use crate::chat::ws::{FRAMES_PER_WRITE, READ_BUFFER_BYTES, WRITE_BUFFER_BYTES};

/// The user and entity every floor message names (the floor reads no token).
const FLOOR_USER: &str = "u-floor";

/// A room of the floor: its ring and its last message id.
struct Room {
    tx: broadcast::Sender<Arc<Utf8Bytes>>,
    last_id: AtomicI64,
}

#[derive(Clone, Default)]
struct Rooms(Arc<Mutex<HashMap<i64, Arc<Room>>>>);

impl Rooms {
    fn room(&self, id: i64) -> Arc<Room> {
        // A poisoned map still holds valid rooms: the floor goes on with it.
        let mut rooms = self.0.lock().unwrap_or_else(|p| p.into_inner());
        rooms
            .entry(id)
            .or_insert_with(|| {
                Arc::new(Room {
                    tx: broadcast::channel(ROOM_BUFFER).0,
                    last_id: AtomicI64::new(0),
                })
            })
            .clone()
    }
}

/// Serves the floor on `http` until the process is killed; prints its address on stdout
/// the way `warden chat` does, which is what the bench reads.
pub async fn serve(http: SocketAddr) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(http)
        .await
        .with_context(|| format!("cannot listen on {http}"))?;
    let addr = listener.local_addr()?;
    println!("warden bench chat-floor: http://{addr} (a bare websocket fan-out at /chat)");
    let app = Router::new()
        .route("/chat", get(upgrade))
        .with_state(Rooms::default());
    axum::serve(listener, app).await?;
    Ok(())
}

async fn upgrade(State(rooms): State<Rooms>, ws: WebSocketUpgrade) -> Response {
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .on_upgrade(move |socket| session(rooms, socket))
}

fn text(frame: &ServerFrame) -> Message {
    Message::text(frame.to_json())
}

async fn session(rooms: Rooms, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    if sink
        .send(text(&ServerFrame::status(Status::Start)))
        .await
        .is_err()
    {
        return;
    }
    let mut joined: Option<(Arc<Room>, i64, broadcast::Receiver<Arc<Utf8Bytes>>)> = None;
    loop {
        let delivery = async {
            match &mut joined {
                Some((_, _, rx)) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            incoming = stream.next() => {
                let Some(Ok(Message::Text(t))) = incoming else {
                    match incoming {
                        Some(Ok(_)) => continue,
                        _ => return,
                    }
                };
                let reply = match parse_client(t.as_str()) {
                    Err(e) => Some(e),
                    Ok(ClientFrame::Token { .. }) => Some(ServerFrame::status(Status::Ready)),
                    Ok(ClientFrame::SelectRoom { room_id, .. }) => {
                        let room = rooms.room(room_id);
                        let rx = room.tx.subscribe();
                        joined = Some((room, room_id, rx));
                        Some(ServerFrame::Status {
                            content: Status::Connected,
                            room_id: Some(room_id),
                            reason: None,
                        })
                    }
                    Ok(ClientFrame::Message { content }) => match &joined {
                        Some((room, room_id, _)) => {
                            let frame = ServerFrame::Message(MessageOut {
                                room_id: *room_id,
                                id: room.last_id.fetch_add(1, Ordering::Relaxed) + 1,
                                user_uuid: FLOOR_USER.into(),
                                entity_uuid: FLOOR_USER.into(),
                                content,
                                time_ms: 0,
                            });
                            // No receiver left only means nobody is listening.
                            let _ = room.tx.send(Arc::new(Utf8Bytes::from(frame.to_json())));
                            None
                        }
                        None => Some(ServerFrame::error(ErrorCode::NotInRoom, "select a room first")),
                    },
                    Ok(ClientFrame::LeaveRoom) => {
                        joined = None;
                        None
                    }
                    Ok(ClientFrame::Ping) => Some(ServerFrame::Pong),
                };
                if let Some(reply) = reply
                    && sink.send(text(&reply)).await.is_err()
                {
                    return;
                }
            }
            delivered = delivery => {
                // A socket that fell behind skips what it missed (the clients count it).
                let first = match delivered {
                    Ok(frame) => frame,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                // What is queued goes out in one write, as in the gateway.
                let mut next = Some(first);
                let mut fed = 0;
                while let Some(frame) = next.take() {
                    if sink.feed(Message::Text((*frame).clone())).await.is_err() {
                        return;
                    }
                    fed += 1;
                    if fed < FRAMES_PER_WRITE
                        && let Some((_, _, rx)) = &mut joined
                    {
                        match rx.try_recv() {
                            Ok(frame) => next = Some(frame),
                            Err(TryRecvError::Empty | TryRecvError::Lagged(_)) => {}
                            Err(TryRecvError::Closed) => return,
                        }
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}
