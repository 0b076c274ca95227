#!/usr/bin/env bash
# Removes the iptables chains a kubelet makes (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT) and
# every rule that jumps to them, in IPv4 and IPv6, every table. The test node (node.ts) runs it when it stops;
# kube-proxy removes its own chains (`kube-proxy --cleanup`). Idempotent.
set -uo pipefail
chains="KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT"
for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null || continue
  for t in filter nat mangle; do
    for c in $chains; do
      "$ipt" -t "$t" -S 2>/dev/null | grep -E -- "^-A [A-Z-]+ .*-j $c( |$)" | sed 's/^-A /-D /' | while read -r rule; do eval "$ipt -t $t $rule"; done
      "$ipt" -t "$t" -F "$c" 2>/dev/null && "$ipt" -t "$t" -X "$c" 2>/dev/null
    done
  done
done
exit 0
