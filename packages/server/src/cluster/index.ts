export { Membership, type ClusterInfo, type Member, type MemberRecord, type MembershipOptions } from './membership.js';
export { TtlReportRelay, type TtlRelayOptions } from './ttl-relay.js';
export { rendezvousOwner } from './rendezvous.js';
export { clusterPlugin } from './routes.js';
export { listMembers, type MemberView } from './members.js';
export { SharedLeases, ttlBucket, type SharedLeasesOptions } from './shared-leases.js';
