#!/usr/bin/env bash
# Removes the iptables chains a kubelet makes (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT) and
# every rule that jumps to them, in IPv4 and IPv6, every table. The test node (node.ts) runs it when it stops;
# kube-proxy removes its own chains (`kube-proxy --cleanup`). Idempotent.
#   --cni NAME: instead, the nat POSTROUTING rules the CNI bridge plugin made for pods of network NAME
#   (ipMasq), and the CNI-… chains they jump to.
set -uo pipefail
if [ "${1:-}" = "--cni" ]; then
  name="$2"
  iptables -t nat -S POSTROUTING 2>/dev/null | grep -F -- "name: \\\"$name\\\" " | while read -r rule; do
    chain=$(printf '%s\n' "$rule" | sed -n 's/.* -j \(CNI-[0-9a-f]*\).*/\1/p')
    eval "iptables -t nat ${rule/-A /-D }"
    [ -n "$chain" ] && iptables -t nat -F "$chain" 2>/dev/null && iptables -t nat -X "$chain" 2>/dev/null
  done
  exit 0
fi
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
