//! Which protocols, at which versions, two nodes speak on a connection (`PROTOCOL.md` §6.2).
//!
//! Each node lists in its `NodeInfo` the channels it offers, each carrying a protocol name
//! and version; a protocol spoken at several versions lists its channels once per version.
//! For every protocol both lists name, the highest version both offer is chosen, and the
//! channels both list for that protocol and version are opened — nothing else. Both ends
//! compute this from the same two lists, so they open the same channels without a round
//! trip, and a DATA frame on any other channel is a protocol error.

use alloc::vec::Vec;

use crate::node_info::ChannelInfo;

/// The channels open between a node offering `local` and one offering `remote`, sorted by
/// channel id, each with the protocol version chosen.
///
/// ```
/// use switchboard::{ChannelInfo, negotiate};
///
/// let offer = |id, protocol: &str, version| ChannelInfo { id, protocol: protocol.into(), version };
/// let ours = [offer(1, "a", 1), offer(2, "b", 1), offer(2, "b", 2)];
/// let theirs = [offer(2, "b", 1), offer(3, "c", 1)];
/// assert_eq!(negotiate(&ours, &theirs), vec![offer(2, "b", 1)]);
/// ```
pub fn negotiate(local: &[ChannelInfo], remote: &[ChannelInfo]) -> Vec<ChannelInfo> {
    let mut open: Vec<ChannelInfo> = Vec::new();
    for ours in local {
        let shared = |version: u16| {
            local
                .iter()
                .filter(|channel| channel.protocol == ours.protocol && channel.version == version)
                .any(|mine| {
                    remote.iter().any(|theirs| {
                        theirs.protocol == mine.protocol
                            && theirs.version == version
                            && theirs.id == mine.id
                    })
                })
        };
        // The highest version of this protocol both ends offer on at least one channel.
        let chosen = local
            .iter()
            .filter(|channel| channel.protocol == ours.protocol)
            .map(|channel| channel.version)
            .filter(|&version| shared(version))
            .max();
        let opens = chosen == Some(ours.version)
            && remote.iter().any(|theirs| {
                theirs.id == ours.id
                    && theirs.protocol == ours.protocol
                    && theirs.version == ours.version
            });
        if opens && !open.iter().any(|channel| channel.id == ours.id) {
            open.push(ours.clone());
        }
    }
    open.sort_by_key(|channel| channel.id);
    open
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn offer(id: u16, protocol: &str, version: u16) -> ChannelInfo {
        ChannelInfo {
            id,
            protocol: protocol.into(),
            version,
        }
    }

    #[test]
    fn the_highest_common_version_wins_and_only_its_channels_open() {
        let ours = [
            offer(1, "a", 1),
            offer(10, "b", 1),
            offer(11, "b", 1),
            offer(10, "b", 2),
            offer(12, "b", 2),
        ];
        let theirs = [offer(10, "b", 1), offer(11, "b", 1), offer(20, "c", 1)];
        assert_eq!(
            negotiate(&ours, &theirs),
            vec![offer(10, "b", 1), offer(11, "b", 1)]
        );
        let upgraded = [offer(10, "b", 2), offer(12, "b", 2), offer(10, "b", 1)];
        assert_eq!(
            negotiate(&ours, &upgraded),
            vec![offer(10, "b", 2), offer(12, "b", 2)]
        );
    }

    #[test]
    fn both_ends_compute_the_same_channels() {
        let a = [
            offer(1, "a", 1),
            offer(2, "b", 3),
            offer(2, "b", 2),
            offer(3, "c", 1),
        ];
        let b = [
            offer(2, "b", 2),
            offer(2, "b", 1),
            offer(3, "c", 1),
            offer(4, "d", 1),
        ];
        let ids =
            |open: Vec<ChannelInfo>| open.iter().map(|c| (c.id, c.version)).collect::<Vec<_>>();
        assert_eq!(ids(negotiate(&a, &b)), ids(negotiate(&b, &a)));
        assert_eq!(ids(negotiate(&a, &b)), vec![(2, 2), (3, 1)]);
    }

    #[test]
    fn same_id_under_another_protocol_does_not_open() {
        assert!(negotiate(&[offer(1, "a", 1)], &[offer(1, "z", 1)]).is_empty());
        assert!(negotiate(&[offer(1, "a", 1)], &[offer(1, "a", 2)]).is_empty());
    }
}
