//! Rooms and history over HTTP (`/api/rooms/…`).
//!
//! Every route checks the caller's membership first and answers 404 to
//! non-members, so a room's existence never leaks.

use std::sync::Arc;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use service_kit::ApiError;
use service_kit::bus::EventBus;
use service_kit::http::{ApiJson, AuthUser};
use service_kit::token::Verifier;
use shared_models::chat::MemberChanged;
use shared_models::{
    Envelope, ErrorCode, EventKind, Message, Room, RoomId, RoomKind, RoomMember, RoomName, UserId,
};

use crate::store::{ChatStore, StoreError};

/// The service's name on the bus.
pub const SOURCE: &str = "db-writer";

/// Most members a group room can be created with.
pub const MAX_INITIAL_MEMBERS: usize = 1000;

/// Largest history page.
pub const MAX_PAGE: u32 = 200;

/// Router state.
#[derive(Clone)]
pub struct RoomsState {
    /// The chat store.
    pub store: Arc<dyn ChatStore>,
    /// Verifies bearer tokens.
    pub verifier: Arc<Verifier>,
    /// Announces membership changes.
    pub bus: Arc<dyn EventBus>,
}

impl FromRef<RoomsState> for Arc<Verifier> {
    fn from_ref(s: &RoomsState) -> Self {
        s.verifier.clone()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(e)
    }
}

/// The routes.
pub fn router(state: RoomsState) -> Router {
    Router::new()
        .route("/api/rooms", post(create_room).get(list_rooms))
        .route("/api/rooms/{id}", get(get_room))
        .route("/api/rooms/{id}/members", post(add_member))
        .route("/api/rooms/{id}/members/{user_id}", delete(remove_member))
        .route("/api/rooms/{id}/messages", get(history))
        .with_state(state)
}

fn parse_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    // A malformed id names no room the caller is in: same answer as unknown.
    raw.parse().map_err(|_| ApiError::not_found(what))
}

/// The room if `user` is a member; 404 otherwise.
async fn room_for_member(
    store: &dyn ChatStore,
    id: RoomId,
    user: UserId,
) -> Result<Room, ApiError> {
    match store.room(id).await? {
        Some(room) if room.members.contains(&user) => Ok(room),
        _ => Err(ApiError::not_found("room")),
    }
}

async fn announce(bus: &dyn EventBus, kind: EventKind, room: &Room, user: UserId) {
    let env = Envelope::new(
        kind,
        SOURCE,
        MemberChanged {
            room: room.clone(),
            user,
        },
    );
    // Membership is already stored; the event only tells live gateways.
    if let Err(err) = bus.publish(kind.as_str(), env.to_bytes()).await {
        tracing::warn!(error = %err, room = %room.id, user = %user, "cannot announce membership change");
    }
}

async fn create_room(
    State(s): State<RoomsState>,
    me: AuthUser,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Room>), ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request("expected a JSON object"))?;
    if let Some(direct) = obj.get("direct") {
        let other: UserId = direct
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ApiError::bad_request("direct must be a user id"))?;
        if other == me.id {
            return Err(ApiError::bad_request(
                "cannot open a direct room with yourself",
            ));
        }
        if !s.store.unknown_users(vec![other]).await?.is_empty() {
            return Err(ApiError::new(ErrorCode::UnknownUser, "no such user"));
        }
        let (room, created) = s.store.direct_room(me.id, other).await?;
        if created {
            // Every member is announced, the creator too: services that
            // keep their own member lists learn the whole room.
            for m in [me.id, other] {
                announce(s.bus.as_ref(), EventKind::MemberAdded, &room, m).await;
            }
        }
        return Ok((StatusCode::CREATED, Json(room)));
    }
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("name (string) or direct (user id) is required"))?;
    let name =
        RoomName::parse(name).map_err(|e| ApiError::new(ErrorCode::InvalidName, e.to_string()))?;
    let members: Vec<UserId> = match obj.get("members") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|_| ApiError::bad_request("members must be a list of user ids"))?,
    };
    if members.len() > MAX_INITIAL_MEMBERS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_INITIAL_MEMBERS} members"
        )));
    }
    let unknown = s.store.unknown_users(members.clone()).await?;
    if !unknown.is_empty() {
        return Err(ApiError::new(
            ErrorCode::UnknownUser,
            format!("unknown user {}", unknown[0]),
        ));
    }
    let room = s
        .store
        .create_group(name.as_str().to_owned(), me.id, members)
        .await?;
    // Every member is announced, the creator too (see direct rooms above).
    for m in &room.members {
        announce(s.bus.as_ref(), EventKind::MemberAdded, &room, *m).await;
    }
    tracing::info!(room = %room.id, owner = %me.id, "room created");
    Ok((StatusCode::CREATED, Json(room)))
}

async fn list_rooms(State(s): State<RoomsState>, me: AuthUser) -> Result<Json<Value>, ApiError> {
    let rooms: Vec<RoomMember> = s.store.rooms_for(me.id).await?;
    Ok(Json(json!({ "rooms": rooms })))
}

async fn get_room(
    State(s): State<RoomsState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Room>, ApiError> {
    let id = parse_id(&id, "room")?;
    Ok(Json(room_for_member(s.store.as_ref(), id, me.id).await?))
}

#[derive(Deserialize)]
struct AddMember {
    user_id: UserId,
}

async fn add_member(
    State(s): State<RoomsState>,
    me: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AddMember>,
) -> Result<Json<Room>, ApiError> {
    let id = parse_id(&id, "room")?;
    let room = room_for_member(s.store.as_ref(), id, me.id).await?;
    if room.kind == RoomKind::Direct {
        return Err(ApiError::bad_request(
            "direct rooms have exactly two members",
        ));
    }
    if room.owner != Some(me.id) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the owner manages members",
        ));
    }
    if !s.store.unknown_users(vec![body.user_id]).await?.is_empty() {
        return Err(ApiError::new(ErrorCode::UnknownUser, "no such user"));
    }
    let already = room.members.contains(&body.user_id);
    let room = s.store.add_member(id, body.user_id).await?;
    if !already {
        announce(s.bus.as_ref(), EventKind::MemberAdded, &room, body.user_id).await;
    }
    Ok(Json(room))
}

async fn remove_member(
    State(s): State<RoomsState>,
    me: AuthUser,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id, "room")?;
    let user: UserId = parse_id(&user, "member")?;
    let room = room_for_member(s.store.as_ref(), id, me.id).await?;
    if room.kind == RoomKind::Direct {
        return Err(ApiError::bad_request(
            "direct rooms have exactly two members",
        ));
    }
    if user != me.id && room.owner != Some(me.id) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the owner removes other members",
        ));
    }
    if !room.members.contains(&user) {
        return Err(ApiError::not_found("member"));
    }
    let room = s.store.remove_member(id, user).await?;
    announce(s.bus.as_ref(), EventKind::MemberRemoved, &room, user).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Page {
    before: Option<String>,
    limit: Option<String>,
}

/// Parses `before`/`limit` as the protocol defines them (shared with the
/// gateway's `history` event).
pub fn page_bounds(before: Option<u64>, limit: Option<u64>) -> (Option<u64>, u32) {
    let limit = limit.unwrap_or(50).clamp(1, u64::from(MAX_PAGE));
    (before, u32::try_from(limit).unwrap_or(MAX_PAGE))
}

async fn history(
    State(s): State<RoomsState>,
    me: AuthUser,
    Path(id): Path<String>,
    Query(q): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "room")?;
    let num = |v: Option<String>, what: &str| -> Result<Option<u64>, ApiError> {
        v.map(|s| {
            s.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("{what} must be a non-negative integer"))
            })
        })
        .transpose()
    };
    let (before, limit) = page_bounds(num(q.before, "before")?, num(q.limit, "limit")?);
    if s.store.membership(id, me.id).await?.is_none() {
        return Err(ApiError::not_found("room"));
    }
    let messages: Vec<Message> = s.store.history(id, before, limit).await?;
    Ok(Json(json!({ "messages": messages })))
}
