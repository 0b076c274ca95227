#!/usr/bin/env bash
# Removes the iptables chains a kubelet makes (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT) and
# every rule that jumps to them, in IPv4 and IPv6, every table. The test node (node.ts) runs it when it stops;
# kube-proxy removes its own chains (`kube-proxy --cleanup`). Idempotent.
#   --cni NAME: instead, the nat rules the CNI plugins made for pods of network NAME — the bridge plugin's
#   POSTROUTING masquerade (ipMasq) and the portmap plugin's hostPort DNAT (a pod killed without a CNI DEL
#   leaves them, and a stale DNAT would win over a later pod's on the same port) — and the CNI-… chains
#   they jump to; then portmap's shared chains once no pod's rule is left in them.
set -uo pipefail
if [ "${1:-}" = "--cni" ]; then
  name="$2"
  for chain_of_rules in POSTROUTING CNI-HOSTPORT-DNAT; do
    iptables -t nat -S "$chain_of_rules" 2>/dev/null | grep -F -- "name: \\\"$name\\\" " | while read -r rule; do
      chain=$(printf '%s\n' "$rule" | sed -n 's/.* -j \(CNI-[0-9A-Za-z-]*\).*/\1/p')
      eval "iptables -t nat ${rule/-A /-D }"
      [ -n "$chain" ] && iptables -t nat -F "$chain" 2>/dev/null && iptables -t nat -X "$chain" 2>/dev/null
    done
  done
  if iptables -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1 && [ "$(iptables -t nat -S CNI-HOSTPORT-DNAT | grep -c '^-A')" = 0 ]; then
    for jump in "PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" "OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" \
      "POSTROUTING -m comment --comment \"CNI portfwd requiring masquerade\" -j CNI-HOSTPORT-MASQ"; do
      eval "iptables -t nat -D $jump" 2>/dev/null
    done
    for c in CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK; do iptables -t nat -F "$c" 2>/dev/null && iptables -t nat -X "$c" 2>/dev/null; done
  fi
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
