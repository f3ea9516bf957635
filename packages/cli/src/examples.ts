import type { Command } from 'commander';

/**
 * The examples of every command, by its path under `beacon`: printed after its `--help` and in
 * the man page's EXAMPLES. Kept in one table so a command without examples is one test away
 * from being noticed (packages/cli/test/help.test.ts).
 */
export const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  '': ['beacon services', 'beacon --server http://10.0.0.5:8500 instances web -o wide'],
  server: [
    'beacon server --dev',
    'beacon server --data-dir /var/lib/beacon --http-addr 10.0.0.5:8500 --acl',
    'beacon server --store etcd://10.0.0.1:2379,10.0.0.2:2379 --node beacon-1',
    'beacon server --datacenter us-east --federate eu-west=https://10.1.0.5:8500,https://10.1.0.6:8500 --ca ca.pem --failover web=nearest:1',
  ],
  agent: ['beacon agent --config-dir /etc/beacon.d', 'beacon agent --config-dir ./services --lease-ttl 15s --drain-grace 10s'],
  proxy: [
    'beacon proxy --listen 127.0.0.1:15001=payments',
    'beacon proxy --listen 127.0.0.1:15001=payments --listen 127.0.0.1:15432=tcp:postgres --admin 127.0.0.1:15000',
    'beacon proxy --config /etc/beacon/proxy.yaml --access-log info',
    'beacon proxy --listen 127.0.0.1:15001=payments@eu-west',
    'beacon proxy --listen 127.0.0.1:15001=payments --failover payments=nearest:2',
  ],
  exec: ['beacon exec --service payments -- ./checkout', 'beacon exec --service payments=15001 --service ledger -- node app.js', 'beacon exec --service payments -- sh -c \'curl -s $PAYMENTS_URL/health\''],
  register: ['beacon register -s web -a 10.0.0.11 -p 8080 --ttl 30s', 'beacon register -s web -a 10.0.0.12 -p 8080 -t v2 -m team=core --check-ttl 15s'],
  deregister: ['beacon deregister web-10.0.0.11-8080'],
  heartbeat: ['beacon heartbeat web-10.0.0.11-8080'],
  maintenance: ['beacon maintenance web-10.0.0.11-8080 -r "kernel upgrade"', 'beacon maintenance web-10.0.0.11-8080 --off'],
  drain: ['beacon drain web-10.0.0.11-8080 -r "scaling down"', 'beacon drain web-10.0.0.11-8080 --off'],
  check: ['beacon check pass service:web-10.0.0.12-8080', 'beacon check fail service:web-10.0.0.12-8080 -n "disk full"'],
  services: ['beacon services', 'beacon services -o json', 'beacon services --dc eu-west'],
  instances: ['beacon instances web --passing', 'beacon instances web -t v2 --zone eu-1 -o wide', 'beacon instances web --no-headers | wc -l', 'beacon instances web --dc eu-west', 'beacon instances web --failover nearest:2'],
  explain: ['beacon explain web-10.0.0.11-8080'],
  events: ['beacon events --service web --limit 20', 'beacon events --kind deregistered --since 1h', 'beacon events --instance web-10.0.0.11-8080 --since 42 --follow'],
  watch: ['beacon watch web api', 'beacon watch -o json', 'beacon watch web --dc eu-west'],
  kv: ['beacon kv put config/web/replicas 3', 'beacon kv get config/web/replicas', 'beacon kv list config/'],
  'kv get': ['beacon kv get config/web/replicas', 'beacon kv get config/web/replicas -o json', 'beacon kv get --recurse config/web/'],
  'kv list': ['beacon kv list', 'beacon kv list config/ -o wide'],
  'kv put': ['beacon kv put config/web/replicas 3', 'beacon kv put config/web/tls.pem @./tls.pem', 'echo on | beacon kv put flags/dark-mode -', 'beacon kv put config/web/replicas 4 --cas 17'],
  'kv delete': ['beacon kv delete config/web/replicas', 'beacon kv delete --recurse config/web/', 'beacon kv delete config/web/replicas --cas 18'],
  snapshot: ['beacon snapshot save backup.snap', 'beacon snapshot restore backup.snap'],
  'snapshot save': ['beacon snapshot save backup-$(date +%F).snap', 'beacon --server http://10.0.0.5:8500 snapshot save beacon.snap'],
  'snapshot restore': ['beacon snapshot restore backup.snap'],
  status: ['beacon status', 'beacon status -o json'],
  members: ['beacon members', 'beacon members -o wide'],
  datacenters: ['beacon datacenters', 'beacon datacenters -o wide'],
  version: ['beacon version', 'beacon version -o json'],
  acl: ['beacon acl bootstrap', 'BEACON_TOKEN=<secret> beacon acl token list'],
  'acl bootstrap': ['beacon acl bootstrap', 'beacon acl bootstrap -o json | jq -r .secretId > management.token'],
  'acl token': ['beacon acl token create --description web --policy-name web-write', 'beacon acl token list'],
  'acl token create': ['beacon acl token create --description "web deployer" --policy-name web-write', 'beacon acl token create --role-name readers -o json'],
  'acl token list': ['beacon acl token list', 'beacon acl token list -o wide'],
  'acl token read': ['beacon acl token read 6a1253d2-1785-24fd-91c2-f8e78c745511', 'beacon --token-file ./web.token acl token read --self'],
  'acl token update': ['beacon acl token update 00000000-0000-0000-0000-000000000002 --policy-name public-read'],
  'acl token delete': ['beacon acl token delete 6a1253d2-1785-24fd-91c2-f8e78c745511'],
  'acl policy': ['beacon acl policy create --name web-write --rules \'service "web" { policy = "write" }\'', 'beacon acl policy list'],
  'acl policy create': ['beacon acl policy create --name web-write --rules \'service "web" { policy = "write" }\'', 'beacon acl policy create --name readers --rules @readers.hcl'],
  'acl policy list': ['beacon acl policy list'],
  'acl policy read': ['beacon acl policy read web-write', 'beacon acl policy read global-management -o json'],
  'acl policy delete': ['beacon acl policy delete web-write'],
  'acl role': ['beacon acl role create --name readers --policy-name read-all', 'beacon acl role list'],
  'acl role create': ['beacon acl role create --name deployers --policy-name web-write --policy-name api-write'],
  'acl role list': ['beacon acl role list'],
  completion: ['beacon completion bash > ~/.local/share/bash-completion/completions/beacon', 'beacon completion zsh > "${fpath[1]}/_beacon"', 'source <(beacon completion bash)'],
  man: ['beacon man > beacon.1 && man -l beacon.1', 'beacon man | groff -man -Tutf8 | less'],
};

/** A command's path under `beacon`, e.g. `kv get`. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Adds each command's examples after its `--help`, through the whole tree. */
export function addExamples(cmd: Command): void {
  const examples = EXAMPLES[commandPath(cmd)];
  if (examples?.length) cmd.addHelpText('after', `\nExamples:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n`);
  for (const sub of cmd.commands) addExamples(sub);
}
