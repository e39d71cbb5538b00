"""One canonical v3 document per kind (every default spelled out, as `to_dict` writes it)."""

from __future__ import annotations

import yaml

_CANONICAL = """
- apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata:
    name: pool-v4
    labels: {zone: a}
    annotations: {owner: net-team}
    uid: 0b7c6a62-0000-4000-8000-000000000001
    creationTimestamp: "2026-11-30T12:00:00Z"
  spec:
    cidr: 10.244.0.0/16
    vxlanMode: CrossSubnet
    ipipMode: Never
    natOutgoing: true
    blockSize: 26
    nodeSelector: all()
    allowedUses: [Workload, Tunnel]
    assignmentMode: Automatic
- apiVersion: projectcalico.org/v3
  kind: BGPConfiguration
  metadata: {name: default}
  spec:
    logSeverityScreen: Info
    nodeToNodeMeshEnabled: false
    asNumber: 64513
    listenPort: 1179
    bindMode: NodeIP
    serviceClusterIPs: [{cidr: 10.96.0.0/12}]
    communities: [{name: bgp-large-community, value: "63400:300:100"}]
    prefixAdvertisements:
    - cidr: 10.244.0.0/16
      communities: [bgp-large-community, "63400:120"]
    nodeMeshPassword: {secretKeyRef: {name: bgp-secrets, key: mesh}}
    nodeMeshMaxRestartTime: 2m0s
    ignoredInterfaces: [docker0]
- apiVersion: projectcalico.org/v3
  kind: BGPPeer
  metadata: {name: rr-clients}
  spec:
    nodeSelector: "!has(routeReflector)"
    peerSelector: has(routeReflector)
    sourceAddress: UseNodeIP
    keepaliveTime: 30s
    maxRestartTime: 1m30s
- apiVersion: projectcalico.org/v3
  kind: BGPPeer
  metadata: {name: tor-router}
  spec:
    node: node-1
    peerIP: "192.0.2.1:1179"
    asNumber: 65001
    localASNumber: 64600
    password: {secretKeyRef: {name: bgp-secrets, key: tor}}
    sourceAddress: None
    nextHopMode: Self
    ttlSecurity: 1
    reachableBy: 10.0.0.254
    reversePeering: Manual
- apiVersion: projectcalico.org/v3
  kind: Node
  metadata:
    name: node-1
    labels: {routeReflector: "true"}
  spec:
    bgp:
      ipv4Address: 10.192.0.2/16
      ipv6Address: fd00::2/64
      asNumber: 64512
      routeReflectorClusterID: 224.0.0.1
      ipv4IPIPTunnelAddr: 10.244.1.1
    ipv4VXLANTunnelAddr: 10.244.1.2
    vxlanTunnelMACAddr: "66:aa:bb:cc:dd:ee"
    wireguard: {interfaceIPv4Address: 10.244.1.3}
    addresses: [{address: 10.192.0.2, type: InternalIP}]
    orchRefs: [{orchestrator: k8s, nodeName: node-1}]
  status:
    wireguardPublicKey: jNQ7hX0j3BJkIXXjUgQ4wnw0V6n0PvyEx3lV6pBHlkE=
    podCIDRs: [10.244.1.0/24]
- apiVersion: projectcalico.org/v3
  kind: FelixConfiguration
  metadata: {name: default}
  spec:
    logSeverityScreen: Warning
    routeRefreshInterval: 1m0s
    deviceRouteProtocol: 80
    vxlanVNI: 4097
    wireguardEnabled: true
    wireguardRoutingRulePriority: 100
    defaultEndpointToHostAction: Return
    failsafeInboundHostPorts: [{protocol: TCP, port: 22}, {protocol: UDP, port: 68, net: 10.0.0.0/8}]
    routeTableRanges: [{min: 1, max: 200}]
    ipipEnabled: false
- apiVersion: projectcalico.org/v3
  kind: NetworkPolicy
  metadata: {name: allow-web, namespace: shop}
  spec:
    tier: default
    order: 100
    selector: app == 'web'
    types: [Ingress, Egress]
    ingress:
    - action: Allow
      protocol: TCP
      source:
        selector: role == 'frontend'
        namespaceSelector: has(projectcalico.org/name)
        notNets: [10.1.0.0/16]
      destination:
        ports: [80, "8000:8080", http]
    - action: Allow
      protocol: ICMP
      icmp: {type: 8, code: 0}
    egress:
    - action: Deny
      ipVersion: 6
      destination: {nets: ["fd00::/8"]}
      metadata: {annotations: {why: no-v6-out}}
- apiVersion: projectcalico.org/v3
  kind: GlobalNetworkPolicy
  metadata: {name: host-pre-dnat}
  spec:
    tier: default
    order: 10.5
    selector: has(host-endpoint)
    types: [Ingress]
    ingress:
    - action: Deny
      protocol: UDP
      notProtocol: 1
      source: {nets: [198.51.100.0/24], serviceAccounts: {names: [api], selector: app == 'x'}}
    preDNAT: true
    applyOnForward: true
- apiVersion: projectcalico.org/v3
  kind: NetworkSet
  metadata: {name: external, namespace: shop, labels: {role: db}}
  spec:
    nets: [198.51.100.0/28, "2001:db8::/32"]
- apiVersion: projectcalico.org/v3
  kind: GlobalNetworkSet
  metadata: {name: blocklist, labels: {blocked: "true"}}
  spec:
    nets: [203.0.113.0/24]
- apiVersion: projectcalico.org/v3
  kind: HostEndpoint
  metadata: {name: node-1-eth0, labels: {host-endpoint: ""}}
  spec:
    node: node-1
    interfaceName: eth0
    expectedIPs: [10.192.0.2]
    profiles: [projectcalico-default-allow]
    ports: [{name: ssh, protocol: TCP, port: 22}]
- apiVersion: projectcalico.org/v3
  kind: WorkloadEndpoint
  metadata:
    name: node--1-cni-abc123-eth0
    namespace: default
    labels: {projectcalico.org/namespace: default, app: web}
  spec:
    orchestrator: cni
    workload: abc123
    node: node-1
    containerID: abc123
    endpoint: eth0
    ipNetworks: [10.244.1.5/32, "fd00:244::5/128"]
    ipNATs: [{internalIP: 10.244.1.5, externalIP: 192.0.2.50}]
    ipv4Gateway: 169.254.1.1
    profiles: [net1]
    interfaceName: caliabc123def45
    mac: "ee:ee:ee:ee:ee:01"
    ports: [{name: http, protocol: TCP, port: 8080, hostPort: 80}]
- apiVersion: projectcalico.org/v3
  kind: Profile
  metadata: {name: net1}
  spec:
    ingress: [{action: Allow, source: {selector: has(net1)}}]
    egress: [{action: Allow}]
    labelsToApply: {net1: ""}
- apiVersion: projectcalico.org/v3
  kind: IPAMBlock
  metadata: {name: 10-244-1-0-30}
  spec:
    cidr: 10.244.1.0/30
    affinity: host:node-1
    affinityClaimTime: "2026-11-30T12:00:00Z"
    allocations: [0, null, 1, null]
    unallocated: [3, 1]
    attributes:
    - handle_id: net1.abc123
      secondary: {node: node-1, pod: web}
    - handle_id: ipip-tunnel-addr-node-1
    sequenceNumber: 1764504000000000000
    sequenceNumberForAllocation: {"0": 1764504000000000001, "2": 1764504000000000002}
- apiVersion: projectcalico.org/v3
  kind: BlockAffinity
  metadata: {name: node-1-10-244-1-0-30}
  spec:
    state: confirmed
    node: node-1
    cidr: 10.244.1.0/30
    type: host
- apiVersion: projectcalico.org/v3
  kind: IPAMHandle
  metadata: {name: net1.abc123}
  spec:
    handleID: net1.abc123
    block: {10.244.1.0/30: 1}
- apiVersion: projectcalico.org/v3
  kind: IPAMConfig
  metadata: {name: default}
  spec:
    strictAffinity: true
    autoAllocateBlocks: true
    maxBlocksPerHost: 4
"""

CANONICAL: list[dict[str, object]] = yaml.safe_load(_CANONICAL)


def by_kind(kind: str) -> dict[str, object]:
    for doc in CANONICAL:
        if doc["kind"] == kind:
            return doc
    raise KeyError(kind)


def minimal(
    kind: str, spec: dict[str, object], name: str = "x", **meta: object
) -> dict[str, object]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": kind,
        "metadata": {"name": name, **meta},
        "spec": spec,
    }
