//! Local fan-out of one gateway process: one NATS subscription per room that has at least
//! one local client (`<prefix>.<room>.*`), feeding a broadcast channel that every local
//! socket in the room reads. The subscription is made by the first local joiner and
//! dropped with the last one, so a gateway hears only the rooms its clients are in.
//!
//! What this gateway stores or changes itself goes to its own sockets directly and to the
//! other gateways over NATS; its connection is made with `no_echo` (see
//! [`Hub::connect_options`]), so the server does not send those back to it: a sender's
//! echo does not wait for a round trip through nats-server, and the gateway does not
//! decode its own messages again.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, broadcast};
use warden_chat::protocol::{MessageOut, ServerFrame};

/// Longest wait for NATS to take a subscription or a control event: with NATS gone a
/// flush never returns, and a join or a rule change must fail instead of hanging.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Events a room's sockets receive (buffered per room, for its slowest socket; a socket
/// that falls this far behind is told it lagged and can resume from its last id). The
/// ring is allocated whole for every room a gateway listens to (~50 bytes a slot: at 256
/// slots of ~70 bytes, 100 rooms' rings were a seventh of 2,000 idle sockets' memory),
/// and sockets take what is queued in batches of up to 64, so a couple of batches suffice.
pub(crate) const ROOM_BUFFER: usize = 128;

/// What happened in a room.
#[derive(Clone, Debug)]
pub enum RoomEvent {
    /// A stored message, behind one pointer so that the room's ring slots stay small.
    Message(Arc<LiveMessage>),
    /// The rules changed (or an invitation was declined): re-evaluate rights.
    RulesChanged,
    /// The room was deleted.
    Deleted,
}

/// A stored message as a room's sockets receive it.
#[derive(Debug)]
pub struct LiveMessage {
    /// The message id (for de-duplication after a resume).
    pub id: i64,
    /// The JSON text of the `message` frame, serialised once per gateway and shared by
    /// every socket.
    pub frame: Utf8Bytes,
}

impl LiveMessage {
    fn event(m: MessageOut) -> RoomEvent {
        RoomEvent::Message(Arc::new(LiveMessage {
            id: m.id,
            frame: Utf8Bytes::from(ServerFrame::Message(m).to_json()),
        }))
    }
}

/// A control event as published on `<prefix>.<room>.ctl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Control {
    /// Rules changed.
    RulesChanged,
    /// Room deleted.
    Deleted,
}

struct Room {
    tx: broadcast::Sender<RoomEvent>,
    members: usize,
    task: tokio::task::JoinHandle<()>,
}

/// The rooms this gateway listens to.
pub struct Hub {
    client: async_nats::Client,
    prefix: String,
    rooms: Mutex<HashMap<i64, Room>>,
    /// The rooms' channels, for handing this gateway's own messages and events to its
    /// sockets: kept apart from `rooms`, whose lock a join holds across a NATS round
    /// trip, so that deliveries never wait for a join.
    local: std::sync::RwLock<HashMap<i64, broadcast::Sender<RoomEvent>>>,
}

/// A socket's place in a room: its receiver, and on drop its leaving.
pub struct Membership {
    hub: Weak<Hub>,
    room_id: i64,
    /// The room's events.
    pub rx: broadcast::Receiver<RoomEvent>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            let room_id = self.room_id;
            // Leaving needs the lock; do it off the dropping task.
            tokio::spawn(async move { hub.leave(room_id).await });
        }
    }
}

impl Hub {
    /// A hub publishing and subscribing with `client` under `prefix`.
    pub fn new(client: async_nats::Client, prefix: &str) -> Hub {
        Hub {
            client,
            prefix: prefix.to_string(),
            rooms: Mutex::new(HashMap::new()),
            local: std::sync::RwLock::new(HashMap::new()),
        }
    }

    fn subject(&self, room_id: i64, kind: &str) -> String {
        format!("{}.{room_id}.{kind}", self.prefix)
    }

    /// Joins `room_id`: subscribes on NATS if this is the first local member, and returns
    /// only once the server has the subscription (so nothing published afterwards is
    /// missed).
    pub async fn join(self: &Arc<Self>, room_id: i64) -> Result<Membership, async_nats::Error> {
        let mut rooms = self.rooms.lock().await;
        if let Some(room) = rooms.get_mut(&room_id) {
            room.members += 1;
            return Ok(Membership {
                hub: Arc::downgrade(self),
                room_id,
                rx: room.tx.subscribe(),
            });
        }
        let mut sub = self
            .client
            .subscribe(format!("{}.{room_id}.*", self.prefix))
            .await?;
        // A flush is a PING/PONG round trip: the SUB is processed when it returns.
        self.flush().await?;
        let (tx, rx) = broadcast::channel(ROOM_BUFFER);
        let sender = tx.clone();
        let task = tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let event = if msg.subject.ends_with(".msg") {
                    match serde_json::from_slice::<MessageOut>(&msg.payload) {
                        Ok(m) => LiveMessage::event(m),
                        Err(e) => {
                            tracing::warn!(subject = %msg.subject, error = %e, "ignoring a malformed room message");
                            continue;
                        }
                    }
                } else {
                    match serde_json::from_slice::<Control>(&msg.payload) {
                        Ok(Control::RulesChanged) => RoomEvent::RulesChanged,
                        Ok(Control::Deleted) => RoomEvent::Deleted,
                        Err(e) => {
                            tracing::warn!(subject = %msg.subject, error = %e, "ignoring a malformed room control event");
                            continue;
                        }
                    }
                };
                // No receivers left is fine: the last member is leaving.
                let _ = sender.send(event);
            }
        });
        self.local_rooms_mut().insert(room_id, tx.clone());
        rooms.insert(
            room_id,
            Room {
                tx,
                members: 1,
                task,
            },
        );
        Ok(Membership {
            hub: Arc::downgrade(self),
            room_id,
            rx,
        })
    }

    async fn leave(&self, room_id: i64) {
        let mut rooms = self.rooms.lock().await;
        if let Some(room) = rooms.get_mut(&room_id) {
            room.members = room.members.saturating_sub(1);
            if room.members == 0 {
                // Aborting drops the subscription, which unsubscribes on the server.
                room.task.abort();
                rooms.remove(&room_id);
                self.local_rooms_mut().remove(&room_id);
            }
        }
    }

    /// The local rooms' channels (a poisoned lock is still a consistent map: every
    /// change to it is one insert or remove).
    fn local_rooms(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<i64, broadcast::Sender<RoomEvent>>> {
        self.local.read().unwrap_or_else(|e| e.into_inner())
    }

    fn local_rooms_mut(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<i64, broadcast::Sender<RoomEvent>>> {
        self.local.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Rooms with local members now.
    pub async fn rooms_listened(&self) -> usize {
        self.rooms.lock().await.len()
    }

    /// The options of a hub's NATS connection: without echo, since the hub hands what it
    /// publishes to its own sockets itself ([`Hub::publish_messages`],
    /// [`Hub::publish_control`]).
    pub fn connect_options(options: async_nats::ConnectOptions) -> async_nats::ConnectOptions {
        options.no_echo()
    }

    /// Hands stored messages to this gateway's sockets in their rooms and publishes them
    /// to the other gateways, in the order given (ascending ids within a room: sockets and
    /// the NATS client write them out in that order). Local sockets get them even when
    /// publishing fails (they are stored: a resume would show them anyway).
    pub async fn publish_messages(&self, messages: &[MessageOut]) -> Result<(), async_nats::Error> {
        {
            let rooms = self.local_rooms();
            for m in messages {
                if let Some(tx) = rooms.get(&m.room_id) {
                    // No receivers left is fine: the last member is leaving.
                    let _ = tx.send(LiveMessage::event(m.clone()));
                }
            }
        }
        for m in messages {
            let payload = serde_json::to_vec(m)?;
            self.client
                .publish(self.subject(m.room_id, "msg"), payload.into())
                .await?;
        }
        Ok(())
    }

    /// Hands a control event to this gateway's sockets in the room and publishes it to the
    /// other gateways, waiting until the server has it.
    pub async fn publish_control(&self, room_id: i64, c: Control) -> Result<(), async_nats::Error> {
        if let Some(tx) = self.local_rooms().get(&room_id) {
            let _ = tx.send(match c {
                Control::RulesChanged => RoomEvent::RulesChanged,
                Control::Deleted => RoomEvent::Deleted,
            });
        }
        let payload = serde_json::to_vec(&c)?;
        self.client
            .publish(self.subject(room_id, "ctl"), payload.into())
            .await?;
        self.flush().await
    }

    /// Flushes the client, within [`FLUSH_TIMEOUT`].
    async fn flush(&self) -> Result<(), async_nats::Error> {
        tokio::time::timeout(FLUSH_TIMEOUT, self.client.flush())
            .await
            .map_err(|_| format!("NATS did not answer within {FLUSH_TIMEOUT:?}"))??;
        Ok(())
    }
}
