//! The examples `--help` shows after the flags of the main commands: what an operator
//! coming from `nsc` and `nats` types first.

pub const INIT: &str = "Examples:
  warden init --name ACME
  warden --data-dir /srv/warden init --name ACME --service-url nats://nats.example.com:4222
  WARDEN_DATABASE_URL=postgres://warden@db/warden warden init --name ACME";

pub const ACCOUNT: &str = "Examples:
  warden account add SHOP --js-mem-storage 64M --js-disk-storage 1G
  warden account edit SHOP --conns 100 --payload 1M
  warden account edit SHOP --js-tier R3 --js-disk-storage 10G
  warden account show SHOP
  warden --json account list";

pub const ACCOUNT_ADD: &str = "Examples:
  warden account add SHOP
  warden account add SHOP --js-mem-storage 64M --js-disk-storage 1G --js-streams 10
  warden account add APP --conns 100 --default-allow-pub 'app.>'";

pub const USER: &str = "Examples:
  warden user add alice -a SHOP --allow-pubsub 'orders.>' --allow-sub '_INBOX.>'
  warden context set --account SHOP && warden user add bob --deny-pub 'admin.>'
  warden user revoke alice -a SHOP
  warden user explain alice -a SHOP --pub orders.new";

pub const USER_ADD: &str = "Examples:
  warden user add alice -a SHOP --allow-pubsub 'orders.>' --allow-sub '_INBOX.>'
  warden user add svc -a SHOP --allow-sub 'svc.>' --allow-pub-response --expiry 30d
  warden user add ci -a SHOP --bearer --source-network 10.0.0.0/8";

pub const CREDS: &str = "Examples:
  warden creds SHOP alice -o alice.creds
  nats --creds alice.creds pub orders.new hi";

pub const DESCRIBE: &str = "Examples:
  warden describe alice.creds
  warden --json describe eyJ0eXAiOiJKV1Qi...";

pub const NATS_CONFIG: &str = "Examples:
  warden nats-config --listen 127.0.0.1:4222 --jetstream /var/lib/nats/js -o nats.conf
  warden nats-config --server-name n1 --cluster acme --cluster-listen 0.0.0.0:6222 \\
      --routes nats-route://n2:6222,nats-route://n3:6222 -o n1.conf
  nats-server -t -c nats.conf";

pub const DEPLOY: &str = "Examples:
  warden deploy render cluster.yaml -o nodes
  nats-server -c nodes/n1.conf";

pub const SERVE: &str = "Examples:
  warden serve --nats nats://127.0.0.1:4222 --http 127.0.0.1:7480
  warden serve --nats nats://n1:4222,nats://n2:4222,nats://n3:4222
  warden serve --tls-cert /etc/warden/tls.pem --tls-key /etc/warden/tls.key
  warden serve --config /etc/warden/warden.toml";

pub const PUSH: &str = "Examples:
  warden push                 # deliver pending changes once (no serve running)
  warden push SHOP --nats nats://127.0.0.1:4222
  warden push --all";

pub const SYNC: &str = "Examples:
  warden sync --check
  warden sync --check --nats nats://n1:4222,nats://n2:4222,nats://n3:4222
  warden sync --fix";

pub const CONTEXT: &str = "Examples:
  warden context set --account SHOP
  warden user add alice --allow-pub 'orders.>'    # in SHOP
  warden context show";

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::Cli;

    const ALL: &[&str] = &[
        super::INIT,
        super::ACCOUNT,
        super::ACCOUNT_ADD,
        super::USER,
        super::USER_ADD,
        super::CREDS,
        super::DESCRIBE,
        super::NATS_CONFIG,
        super::DEPLOY,
        super::SERVE,
        super::PUSH,
        super::SYNC,
        super::CONTEXT,
    ];

    /// A command line's words: single quotes kept together, a `#` comment dropped.
    fn words(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut word = String::new();
        let mut quoted = false;
        for c in line.chars() {
            match c {
                '\'' => quoted = !quoted,
                '#' if !quoted && word.is_empty() => break,
                c if c.is_whitespace() && !quoted => {
                    if !word.is_empty() {
                        out.push(std::mem::take(&mut word));
                    }
                }
                c => word.push(c),
            }
        }
        if !word.is_empty() {
            out.push(word);
        }
        out
    }

    #[test]
    fn every_example_parses() {
        let mut checked = 0;
        for text in ALL {
            let joined = text.replace("\\\n", " ");
            for line in joined.lines().skip(1) {
                for command in line.split("&&") {
                    let w = words(command);
                    // Environment assignments before the command are the shell's.
                    let w: Vec<String> = w
                        .into_iter()
                        .skip_while(|x| x.contains('=') && !x.starts_with('-'))
                        .collect();
                    if w.first().map(String::as_str) != Some("warden") {
                        continue;
                    }
                    if let Err(e) = Cli::try_parse_from(&w) {
                        panic!("example {line:?} does not parse: {e}");
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked >= 30, "{checked} examples checked");
    }
}
