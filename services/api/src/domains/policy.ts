// Advice built from what was observed: seccomp profiles, NetworkPolicies, Landlock rulesets.
import { landlockRuleset } from '../queries/files.ts'
import { networkPolicy } from '../queries/policy.ts'
import { seccompProfile } from '../queries/syscalls.ts'
import type { Resolvers } from '../resolvers-types.generated.ts'

export const typeDefs = /* GraphQL */ `
  type Query {
    "A seccomp profile allowing the syscalls a workload (all its replicas) made in the window."
    seccompProfile(
      namespace: String!
      pod: String
      container: String
      from: DateTime
      to: DateTime
      "Also allow the container runtime's start-up syscalls."
      includeRuntime: Boolean = false
    ): SeccompProfile!
    "A NetworkPolicy admitting exactly the TCP peers and ports seen in the window."
    networkPolicy(namespace: String!, pod: String, from: DateTime, to: DateTime): NetworkPolicyAdvice!
    "A Landlock ruleset covering the files a workload (all its replicas) or function touched."
    landlockRuleset(
      namespace: String!
      pod: String
      function: String
      container: String
      from: DateTime
      to: DateTime
      "Also allow what the container runtime touched while starting it."
      includeRuntime: Boolean = false
    ): LandlockAdvice!
  }

  type SyscallEvidence {
    name: String!
    nr: Int!
    count: Float!
    pods: [String!]!
    containers: [String!]!
  }

  type SeccompProfile {
    namespace: String!
    workloadKind: String
    workloadName: String
    "Every replica the profile was built from."
    pods: [String!]!
    container: String
    from: DateTime
    to: DateTime
    "False when no syscalls were seen: the profile would deny everything."
    observed: Boolean!
    defaultAction: String!
    architectures: [String!]!
    syscalls: [SyscallEvidence!]!
    "The container runtime's start-up syscalls, kept apart from the workload's."
    runtimeSyscalls: [SyscallEvidence!]!
    "OCI runtime-spec seccomp JSON."
    ociProfile: JSON!
    "Security Profiles Operator SeccompProfile."
    manifest: JSON!
  }

  type PolicyPeer {
    "Pod (selected by labels) or External (an address)."
    kind: String!
    namespace: String
    workload: String
    address: String
    labels: JSON
  }

  type FlowEvidence {
    port: Int!
    connections: Int!
    bytesSent: Float!
    bytesReceived: Float!
    firstSeen: DateTime!
    lastSeen: DateTime!
  }

  type PolicyRule {
    peer: PolicyPeer!
    ports: [Int!]!
    "The NetworkPolicyPeer of the rule."
    peerSpec: JSON!
    evidence: [FlowEvidence!]!
  }

  type NetworkPolicyAdvice {
    namespace: String!
    workloadKind: String
    workloadName: String
    podSelector: JSON!
    ingress: [PolicyRule!]!
    egress: [PolicyRule!]!
    "networking.k8s.io/v1 NetworkPolicy."
    manifest: JSON!
    warnings: [String!]!
  }

  type LandlockRule {
    path: String!
    "A directory rule covers the hierarchy beneath it."
    directory: Boolean!
    "LANDLOCK_ACCESS_FS_* names without the prefix."
    allowedAccess: [String!]!
    allowedAccessMask: Int!
    "Observed paths the rule covers."
    covers: [String!]!
  }

  type LandlockAdvice {
    namespace: String!
    workloadKind: String
    workloadName: String
    function: String
    pods: [String!]!
    from: DateTime
    to: DateTime
    observed: Boolean!
    accesses: [FileAccessSummary!]!
    "Accesses of the container runtime's start-up, left out unless includeRuntime."
    runtimeAccesses: [FileAccessSummary!]!
    rules: [LandlockRule!]!
    "What a launcher applies: { abi, handledAccessFs, handledAccessFsMask, rules }."
    ruleset: JSON!
    summary: String!
  }
`

export const resolvers: Resolvers = {
  Query: {
    seccompProfile: (_, a, ctx) => seccompProfile(ctx, a),
    networkPolicy: (_, a, ctx) => networkPolicy(ctx, a),
    landlockRuleset: (_, a, ctx) => landlockRuleset(ctx, a),
  },
}
