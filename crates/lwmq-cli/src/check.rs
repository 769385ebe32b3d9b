//! `lwmq check URI`: validates a descriptor and shows the kernel rendezvous
//! name a server for it binds.

use lwmq::internals::descriptor::parse_rendezvous_name;
use lwmq::transport::{DescriptorError, IpcAddress};
use serde_json::json;

use crate::failure::{emit, printable, Failure};

/// Arguments of `lwmq check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The descriptor, e.g. `ipc://company/product/channel:5555`.
    pub uri: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// What a valid descriptor maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The canonical descriptor.
    pub canonical: String,
    /// The address (channel name).
    pub address: String,
    /// The port, if any.
    pub port: Option<u16>,
    /// The abstract socket name as `ss -xl` shows it: `@` + name.
    pub rendezvous: String,
    /// Whether the name carries a hash because the address is too long.
    pub hashed: bool,
}

/// Validates `uri`; on error returns the library's error (which names its rule).
pub fn check(uri: &str) -> Result<Checked, DescriptorError> {
    let addr = IpcAddress::parse(uri)?;
    let name = addr.rendezvous_name();
    let hashed = parse_rendezvous_name(&name).is_some_and(|n| n.hashed);
    Ok(Checked {
        canonical: addr.to_string(),
        address: addr.address().to_owned(),
        port: addr.port(),
        rendezvous: format!("@{}", String::from_utf8_lossy(&name)),
        hashed,
    })
}

/// Runs `lwmq check`.
pub fn run(args: &CheckArgs) -> Result<(), Failure> {
    match check(&args.uri) {
        Ok(c) if args.json => {
            let v = json!({
                "canonical": c.canonical,
                "address": c.address,
                "port": c.port,
                "rendezvous": c.rendezvous,
                "hashed": c.hashed,
            });
            emit(&format!("{v}\n"))
        }
        Ok(c) => {
            let port = c.port.map_or_else(|| "-".to_owned(), |p| p.to_string());
            let hashed = if c.hashed {
                "yes (address too long for the name: hash + prefix)"
            } else {
                "no"
            };
            emit(&format!(
                "canonical   {}\naddress     {}\nport        {port}\nrendezvous  {}\nhashed      {hashed}\n",
                printable(&c.canonical),
                printable(&c.address),
                printable(&c.rendezvous),
            ))
        }
        Err(e) => {
            if args.json {
                emit(&format!(
                    "{}\n",
                    json!({"error": e.to_string(), "rule": e.rule()})
                ))?;
            }
            Err(Failure::usage(format!(
                "invalid descriptor: {} [{}]",
                printable(&e.to_string()),
                e.rule()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_rendezvous_name() {
        let c = check("IPC://co/prod/chan:5555").unwrap();
        assert_eq!(c.canonical, "ipc://co/prod/chan:5555");
        assert_eq!(c.rendezvous, "@lwmq1/5555/co/prod/chan");
        assert!(!c.hashed);
        let long = check(&format!("ipc://{}", "x".repeat(119))).unwrap();
        assert!(long.hashed && long.rendezvous.starts_with("@lwmq1/-/#"));
    }
}
