//! Raft between routing replicas over gRPC (tonic).
//!
//! Each openraft message travels as an opaque postcard body inside the
//! `hotline.routing.v1.Raft` service (see `proto/hotline/routing/v1/routing.proto`):
//! [`GrpcNetwork`] is the client side openraft drives, one [`GrpcPeer`] per target
//! replica, and [`RaftService`] is the server side that hands what arrives to the local
//! [`openraft::Raft`].
//!
//! Failures map onto what openraft expects: a replica that cannot be reached (connect
//! refused, UNAVAILABLE) is [`Unreachable`] so openraft backs off; a deadline is
//! [`RPCError::Timeout`]; anything else is a [`NetworkError`], retried at once.

use std::future::Future;
use std::time::Duration;

use hotline_proto::routing::v1 as pb;
use openraft::errors::{
    NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::storage::RaftStateMachine;
use openraft::type_config::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::transport::{Channel, Endpoint};

use crate::typ::{NodeId, SiteNode, TypeConfig};

/// The largest gRPC message a replica accepts: a whole snapshot travels in one message,
/// and the routing state (configuration, summaries, open promises) stays well below this.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// HTTP/2 flow-control window of one Raft stream, both ways. h2's default, 64 KiB, made
/// an `AppendEntries` of a few hundred 1.6 KB summaries wait for several window updates,
/// a round trip each: the summary payload committed ~5k/s over gRPC against ~28k/s over
/// in-process calls. One message of `max_payload_entries` summaries fits in this.
pub(crate) const STREAM_WINDOW_BYTES: u32 = 4 * 1024 * 1024;

/// HTTP/2 flow-control window of a whole connection (every stream to one peer).
pub(crate) const CONNECTION_WINDOW_BYTES: u32 = 16 * 1024 * 1024;

/// How long a connection attempt may take before the target counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Encodes an openraft message for the wire.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // postcard cannot fail on the types openraft derives Serialize for (no maps with
    // non-string keys, no unsized sequences), so a failure is a bug worth a loud panic.
    postcard::to_allocvec(value).expect("openraft messages always encode with postcard")
}

/// Decodes an openraft message from the wire, naming what it expected on failure.
pub fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("{what} does not decode: {e}"))
}

// === impl GrpcNetwork ===

/// Opens one [`GrpcPeer`] per target replica; what openraft is given as its network.
#[derive(Debug, Clone, Default)]
pub struct GrpcNetwork {
    /// This replica's id, for timeout errors that name both ends.
    pub id: NodeId,
}

impl GrpcNetwork {
    /// The network of replica `id`.
    pub fn new(id: NodeId) -> Self {
        Self { id }
    }
}

impl RaftNetworkFactory<TypeConfig> for GrpcNetwork {
    type Network = GrpcPeer;

    async fn new_client(&mut self, target: NodeId, node: &SiteNode) -> GrpcPeer {
        GrpcPeer::new(self.id, target, node)
    }
}

/// The connection to one target replica. The channel connects lazily and reconnects by
/// itself, so a replica that comes back is reached again without a new peer.
#[derive(Debug, Clone)]
pub struct GrpcPeer {
    id: NodeId,
    target: NodeId,
    addr: String,
    client: Option<pb::raft_client::RaftClient<Channel>>,
}

impl GrpcPeer {
    /// A peer for `target` at `node.rpc_addr`; no connection is made yet.
    pub fn new(id: NodeId, target: NodeId, node: &SiteNode) -> Self {
        Self {
            id,
            target,
            addr: node.rpc_addr.clone(),
            client: None,
        }
    }

    fn client(&mut self) -> Result<pb::raft_client::RaftClient<Channel>, Unreachable<TypeConfig>> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{}", self.addr))
            .map_err(|e| {
                Unreachable::from_string(format!(
                    "bad address {:?} of replica {}: {e}",
                    self.addr, self.target
                ))
            })?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .initial_stream_window_size(STREAM_WINDOW_BYTES)
            .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_while_idle(true);
        let client = pb::raft_client::RaftClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        self.client = Some(client.clone());
        Ok(client)
    }

    /// Sends one unary Raft message with the soft deadline openraft gives.
    async fn unary<Req, Resp, F, Fut>(
        &mut self,
        action: RPCTypes,
        req: &Req,
        option: &RPCOption,
        call: F,
    ) -> Result<Resp, RPCError<TypeConfig>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        F: FnOnce(pb::raft_client::RaftClient<Channel>, tonic::Request<pb::RaftMessage>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<pb::RaftMessage>, tonic::Status>>,
    {
        let client = self.client()?;
        let ttl = option.soft_ttl();
        let mut request = tonic::Request::new(pb::RaftMessage { body: encode(req) });
        request.set_timeout(ttl);
        let reply = match tokio::time::timeout(ttl, call(client, request)).await {
            Err(_) => return Err(self.timeout(action, ttl).into()),
            Ok(Err(status)) => return Err(self.status_error(action, ttl, status)),
            Ok(Ok(reply)) => reply.into_inner(),
        };
        decode(
            &format!("{action} reply from replica {}", self.target),
            &reply.body,
        )
        .map_err(|e| RPCError::Network(NetworkError::from_string(e)))
    }

    fn timeout(&self, action: RPCTypes, ttl: Duration) -> Timeout<TypeConfig> {
        Timeout {
            action,
            id: self.id,
            target: self.target,
            timeout: ttl,
        }
    }

    fn status_error(
        &self,
        action: RPCTypes,
        ttl: Duration,
        status: tonic::Status,
    ) -> RPCError<TypeConfig> {
        let what = format!(
            "{action} to replica {} at {}: {}",
            self.target,
            self.addr,
            status.message()
        );
        match status.code() {
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                self.timeout(action, ttl).into()
            }
            tonic::Code::Unavailable | tonic::Code::Unknown => {
                RPCError::Unreachable(Unreachable::from_string(what))
            }
            _ => RPCError::Network(NetworkError::from_string(what)),
        }
    }
}

impl RaftNetworkV2<TypeConfig> for GrpcPeer {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(
            RPCTypes::AppendEntries,
            &rpc,
            &option,
            |mut c, r| async move { c.append_entries(r).await },
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(RPCTypes::Vote, &rpc, &option, |mut c, r| async move {
            c.vote(r).await
        })
        .await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(RPCTypes::Vote, &rpc, &option, |mut c, r| async move {
            c.pre_vote(r).await
        })
        .await
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, Vec<u8>>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.client()?;
        let message = pb::SnapshotMessage {
            vote: encode(&vote),
            meta: encode(&snapshot.meta),
            data: snapshot.snapshot,
        };
        // A snapshot may be large: it gets the hard deadline, not the soft one.
        let ttl = option.hard_ttl();
        let mut request = tonic::Request::new(message);
        request.set_timeout(ttl);
        let reply = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            reply = tokio::time::timeout(ttl, client.full_snapshot(request)) => reply,
        };
        let reply = match reply {
            Err(_) => return Err(self.timeout(RPCTypes::InstallSnapshot, ttl).into()),
            Ok(Err(status)) => {
                return Err(
                    match self.status_error(RPCTypes::InstallSnapshot, ttl, status) {
                        RPCError::Timeout(t) => StreamingError::Timeout(t),
                        RPCError::Unreachable(u) => StreamingError::Unreachable(u),
                        RPCError::Network(n) => StreamingError::Network(n),
                        RPCError::RemoteError(r) => {
                            StreamingError::Network(NetworkError::from_string(r))
                        }
                    },
                );
            }
            Ok(Ok(reply)) => reply.into_inner(),
        };
        decode(
            &format!("snapshot reply from replica {}", self.target),
            &reply.body,
        )
        .map_err(|e| StreamingError::Network(NetworkError::from_string(e)))
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(
            RPCTypes::TransferLeader,
            &req,
            &option,
            |mut c, r| async move { c.transfer_leader(r).await },
        )
        .await
    }
}

// === impl RaftService ===

/// The server side: what other replicas' [`GrpcPeer`]s reach, handed to the local Raft.
pub struct RaftService<SM>
where
    SM: RaftStateMachine<TypeConfig>,
{
    raft: openraft::Raft<TypeConfig, SM>,
}

impl<SM> RaftService<SM>
where
    SM: RaftStateMachine<TypeConfig, SnapshotData = Vec<u8>>,
{
    /// Serves `raft` to the other replicas.
    pub fn new(raft: openraft::Raft<TypeConfig, SM>) -> Self {
        Self { raft }
    }

    /// The tonic service to mount on a server, with the message size a snapshot needs.
    pub fn into_server(self) -> pb::raft_server::RaftServer<Self> {
        pb::raft_server::RaftServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

fn decode_request<T: DeserializeOwned>(
    what: &str,
    request: tonic::Request<pb::RaftMessage>,
) -> Result<T, tonic::Status> {
    decode(what, &request.into_inner().body).map_err(tonic::Status::invalid_argument)
}

fn reply<T: Serialize, E: std::fmt::Display>(
    result: Result<T, E>,
) -> Result<tonic::Response<pb::RaftMessage>, tonic::Status> {
    match result {
        Ok(value) => Ok(tonic::Response::new(pb::RaftMessage {
            body: encode(&value),
        })),
        // The local Raft only fails when it is shutting down or has stopped on a fatal
        // storage error; either way the sender should back off and try again later.
        Err(e) => Err(tonic::Status::unavailable(format!(
            "routing replica is not serving: {e}"
        ))),
    }
}

#[tonic::async_trait]
impl<SM> pb::raft_server::Raft for RaftService<SM>
where
    SM: RaftStateMachine<TypeConfig, SnapshotData = Vec<u8>>,
{
    async fn append_entries(
        &self,
        request: tonic::Request<pb::RaftMessage>,
    ) -> Result<tonic::Response<pb::RaftMessage>, tonic::Status> {
        let rpc: AppendEntriesRequest<TypeConfig> =
            decode_request("append-entries request", request)?;
        reply(self.raft.append_entries(rpc).await)
    }

    async fn vote(
        &self,
        request: tonic::Request<pb::RaftMessage>,
    ) -> Result<tonic::Response<pb::RaftMessage>, tonic::Status> {
        let rpc: VoteRequest<TypeConfig> = decode_request("vote request", request)?;
        reply(self.raft.vote(rpc).await)
    }

    async fn pre_vote(
        &self,
        request: tonic::Request<pb::RaftMessage>,
    ) -> Result<tonic::Response<pb::RaftMessage>, tonic::Status> {
        let rpc: VoteRequest<TypeConfig> = decode_request("pre-vote request", request)?;
        reply(self.raft.pre_vote(rpc).await)
    }

    async fn full_snapshot(
        &self,
        request: tonic::Request<pb::SnapshotMessage>,
    ) -> Result<tonic::Response<pb::RaftMessage>, tonic::Status> {
        let message = request.into_inner();
        let vote: VoteOf<TypeConfig> =
            decode("snapshot vote", &message.vote).map_err(tonic::Status::invalid_argument)?;
        let meta: SnapshotMetaOf<TypeConfig> =
            decode("snapshot meta", &message.meta).map_err(tonic::Status::invalid_argument)?;
        let snapshot = SnapshotOf::<TypeConfig, Vec<u8>> {
            meta,
            snapshot: message.data,
        };
        reply(self.raft.install_full_snapshot(vote, snapshot).await)
    }

    async fn transfer_leader(
        &self,
        request: tonic::Request<pb::RaftMessage>,
    ) -> Result<tonic::Response<pb::RaftMessage>, tonic::Status> {
        let req: TransferLeaderRequest<TypeConfig> =
            decode_request("transfer-leader request", request)?;
        reply(self.raft.handle_transfer_leader(req).await)
    }
}
