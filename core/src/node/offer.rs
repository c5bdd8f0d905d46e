//! Offering a protocol's channels after the node is built: what lets a protocol be declared
//! once, by registering it on a [`Router`](crate::router::Router).

use alloc::sync::Arc;

use rand_core::CryptoRng;

use super::Node;
use crate::node_info::NodeInfoError;
use crate::router::{ProtocolSpec, RegisterError};

impl<R: CryptoRng> Node<R> {
    /// Offers `spec`'s channels as [`NodeConfig::add_protocol`](super::NodeConfig::add_protocol)
    /// would have before the node was built: in the config, the connections' channel limits
    /// and the `NodeInfo` the handshake sends. What the node offers already is not offered
    /// again, so a protocol also in the config is accepted as it is.
    ///
    /// Only while the node has no connection: each one's handshake carries the `NodeInfo`
    /// of its start, and a peer that was offered less would never open the channels.
    /// Nothing changes when it fails.
    pub(crate) fn offer_protocol(&mut self, spec: &ProtocolSpec) -> Result<(), RegisterError> {
        let mut config = self.config.clone();
        config.add_protocol(spec);
        if config.channels == self.config.channels {
            return Ok(());
        }
        let mut info = self.info.clone();
        info.channels.clone_from(&config.channels);
        info.encode().map_err(|error| match error {
            // The offers made are unique: a duplicate is an id offered for another protocol.
            NodeInfoError::DuplicateChannel(id) => RegisterError::ChannelTaken(id),
            error => RegisterError::Info(error),
        })?;
        if self.connection_count() > 0 {
            return Err(RegisterError::NodeRunning);
        }
        self.connection_config = Arc::new(config.connection.clone());
        self.config = config;
        self.info = info;
        Ok(())
    }
}
