//! `deploy/` against the binary it deploys, so that neither drifts from the other:
//!
//! - every `RIGHTSDESK__…` variable named under deploy/ is in docs/configuration.md;
//! - what each container or unit is given (the image's ENV, compose's environment, the
//!   Kubernetes ConfigMap, Secret template and env, the systemd Environment= and env
//!   file) passes `rightsdesk config check`, placeholders replaced by stand-ins, and a
//!   misspelt variable does not;
//! - every port published or probed is the port of the bind the container serves on
//!   (`http.bind` for `serve`, `worker.bind` for `worker`), and every stop timeout is
//!   above the shutdown time the configuration gives;
//! - the Containerfile, compose.yaml, the Kubernetes manifests (and, with `kubectl`,
//!   their rendering) and the systemd units (with `systemd-analyze verify`) have the
//!   shape deploy/README.md describes.
//!
//! Nothing here touches the network.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rightsdesk_tests::TempDir;
use serde::Deserialize;
use serde_json::Value as Json;
use serde_norway::Value as Yaml;

/// Filled-in copies of the examples (deploy/.gitignore): a developer's, never read here.
const IGNORED: [&str; 3] = [".env", "secrets.env", "secret.yaml"];

/// What a placeholder (`<…>`, `${…}`, `change-me`) becomes: 32 bytes in base64, so a
/// valid token secret and a valid evidence key alike, and harmless inside a URL.
const STAND_IN: &str = "cmlnaHRzZGVzayBkZXBsb3k6IHRlc3Qgc3RhbmQtaW4=";

/// What `rightsdesk config check` prints in place of a secret.
const MASK: &str = "********";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `path` relative to the repository, for messages.
fn shown(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Every file under deploy/, sorted.
fn deploy_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("read a directory under deploy/") {
            let path = entry.expect("a directory entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                walk(&path, out);
            } else if !IGNORED.contains(&name) {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo().join("deploy"), &mut files);
    files.sort();
    files
}

// ---------------------------------------------------------------------------------------
// Variables and values.

/// The `RIGHTSDESK__…` names in `text`.
fn variable_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("RIGHTSDESK__") {
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..len].trim_end_matches('_');
        if name.len() > "RIGHTSDESK__".len() {
            names.push(name.to_owned());
        }
        rest = &tail[len..];
    }
    names
}

/// The variables docs/configuration.md lists. A cell that names `A__B__USERNAME`,
/// `…__PASSWORD` lists `A__B__PASSWORD` too.
fn documented_variables() -> Vec<String> {
    let mut names = Vec::new();
    for line in read(&repo().join("docs/configuration.md")).lines() {
        let mut last: Option<String> = None;
        for cell in line.split('`') {
            if let Some(key) = cell.strip_prefix("…__") {
                if let Some(previous) = &last
                    && let Some((section, _)) = previous.rsplit_once("__")
                {
                    names.push(format!("{section}__{key}"));
                }
            } else if let Some(name) = variable_names(cell).pop() {
                last = Some(name.clone());
                names.push(name);
            }
        }
    }
    names
}

/// `value` with its placeholders replaced by [`STAND_IN`]: a whole `<…>`, every `${…}`
/// (compose's interpolation; `$$` is compose's `$`) and every `change-me`.
fn stand_in(value: &str) -> String {
    let trimmed = value.trim();
    if trimmed.starts_with('<') && trimmed.ends_with('>') {
        return STAND_IN.to_owned();
    }
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let end = rest[at..]
            .find('}')
            .unwrap_or_else(|| panic!("an unclosed ${{ in {value:?}"));
        out.push_str(STAND_IN);
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    out.replace("$$", "$").replace("change-me", STAND_IN)
}

/// `KEY=VALUE` lines (an env file, systemd's EnvironmentFile=): comments and blank lines
/// skipped, one pair of surrounding quotes removed.
fn env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=VALUE: {l:?}"));
            (k.trim().to_owned(), unquote(v.trim()))
        })
        .collect()
}

fn unquote(v: &str) -> String {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_owned();
        }
    }
    v.to_owned()
}

// ---------------------------------------------------------------------------------------
// Ports and durations.

/// The ports a health-check command connects to: `/dev/tcp/HOST/PORT` and
/// `http://HOST:PORT/`.
fn probed_ports(command: &str) -> Vec<u16> {
    let mut ports = Vec::new();
    for (marker, separator) in [("/dev/tcp/", '/'), ("://", ':')] {
        for (at, _) in command.match_indices(marker) {
            let after = &command[at + marker.len()..];
            if let Some(sep) = after.find(separator) {
                let digits: String = after[sep + 1..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Ok(port) = digits.parse() {
                    ports.push(port);
                }
            }
        }
    }
    ports
}

/// The port of an address such as `0.0.0.0:8080` or `[::]:8080`.
fn port_of(address: &str) -> Option<u16> {
    address.rsplit_once(':')?.1.parse().ok()
}

/// Seconds in `45`, `45s`, `1m30s`, `2min`.
fn seconds(text: &str) -> u64 {
    let mut total = 0;
    let mut number = String::new();
    let mut unit = String::new();
    let mut flush = |number: &mut String, unit: &mut String| {
        if number.is_empty() {
            return;
        }
        let n: u64 = number.parse().expect("a number");
        total += match unit.as_str() {
            "" | "s" | "sec" => n,
            "m" | "min" => n * 60,
            "h" => n * 3600,
            other => panic!("unknown time unit {other:?} in {text:?}"),
        };
        number.clear();
        unit.clear();
    };
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            if !unit.is_empty() {
                flush(&mut number, &mut unit);
            }
            number.push(c);
        } else {
            unit.push(c);
        }
    }
    flush(&mut number, &mut unit);
    total
}

// ---------------------------------------------------------------------------------------
// What each file gives the binary.

/// One container or unit as a deployment file describes it.
#[derive(Debug, Default, Clone)]
struct Deployed {
    /// Where it is described: `deploy/compose.yaml: service api`.
    origin: String,
    /// The subcommand it runs: `serve`, `worker`, `migrate`.
    command: String,
    /// Its `RIGHTSDESK__…` variables as written (placeholders and all).
    env: BTreeMap<String, String>,
    /// The ports published or probed for it, each with where.
    ports: Vec<(u16, String)>,
    /// How long it is given to stop after SIGTERM, when the file says.
    stop_secs: Option<u64>,
}

impl Deployed {
    fn set_env(&mut self, pairs: impl IntoIterator<Item = (String, String)>) {
        for (k, v) in pairs {
            if k.starts_with("RIGHTSDESK__") {
                self.env.insert(k, v);
            }
        }
    }

    /// The bind it serves on: `http.bind` for `serve`, `worker.bind` for `worker`.
    fn bind(&self) -> Option<&str> {
        let key = match self.command.as_str() {
            "serve" => "RIGHTSDESK__HTTP__BIND",
            "worker" => "RIGHTSDESK__WORKER__BIND",
            _ => return None,
        };
        self.env.get(key).map(String::as_str)
    }
}

/// One instruction of the Containerfile, continuation lines joined.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

/// The Containerfile's stages, each a list of instructions (its FROM first). A line
/// parser: comments dropped (also inside continuations), `\` continues a line.
fn containerfile() -> Vec<Vec<Instruction>> {
    let text = read(&repo().join("deploy/Containerfile"));
    let mut stages: Vec<Vec<Instruction>> = Vec::new();
    let mut logical = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                logical.push_str(head);
                logical.push(' ');
            }
            None => {
                logical.push_str(trimmed);
                let (keyword, args) = logical
                    .split_once(char::is_whitespace)
                    .unwrap_or((&logical, ""));
                let instruction = Instruction {
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.trim().to_owned(),
                };
                if instruction.keyword == "FROM" {
                    stages.push(Vec::new());
                }
                if let Some(stage) = stages.last_mut() {
                    stage.push(instruction);
                }
                logical.clear();
            }
        }
    }
    stages
}

/// The arguments of the final stage's instructions called `keyword`.
fn final_stage(keyword: &str) -> Vec<String> {
    let stages = containerfile();
    let last = stages.last().expect("a FROM in deploy/Containerfile");
    last.iter()
        .filter(|i| i.keyword == keyword)
        .map(|i| i.args.clone())
        .collect()
}

/// An exec-form (`["a", "b"]`) or shell-form argument list.
fn words(args: &str) -> Vec<String> {
    serde_json::from_str::<Vec<String>>(args)
        .unwrap_or_else(|_| args.split_whitespace().map(str::to_owned).collect())
}

/// The image's final stage: its ENV, its CMD, its EXPOSE and HEALTHCHECK ports.
fn image() -> Deployed {
    let mut image = Deployed {
        origin: "deploy/Containerfile".to_owned(),
        ..Deployed::default()
    };
    for args in final_stage("ENV") {
        let pairs = args.split_whitespace().map(|word| {
            assert!(
                !word.contains(['"', '\'']),
                "deploy/Containerfile: ENV {word}: quoted values are beyond this test's parser"
            );
            let (k, v) = word
                .split_once('=')
                .unwrap_or_else(|| panic!("deploy/Containerfile: ENV {word}: not KEY=VALUE"));
            (k.to_owned(), v.to_owned())
        });
        image.set_env(pairs.collect::<Vec<_>>());
    }
    image.command = final_stage("CMD")
        .last()
        .and_then(|args| words(args).first().cloned())
        .unwrap_or_default();
    for args in final_stage("EXPOSE") {
        for port in args.split_whitespace() {
            let port = port
                .trim_end_matches("/tcp")
                .parse()
                .expect("an EXPOSE port");
            image.ports.push((port, "EXPOSE".to_owned()));
        }
    }
    for args in final_stage("HEALTHCHECK") {
        for port in probed_ports(&args) {
            image.ports.push((port, "HEALTHCHECK".to_owned()));
        }
    }
    image
}

/// The documents of a YAML file, merge keys (`<<: *anchor`) applied.
fn yaml_documents(text: &str, origin: &str) -> Vec<Yaml> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| {
            let mut value =
                Yaml::deserialize(document).unwrap_or_else(|e| panic!("{origin}: not YAML: {e}"));
            value
                .apply_merge()
                .unwrap_or_else(|e| panic!("{origin}: merge keys: {e}"));
            value
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn compose() -> Yaml {
    let path = repo().join("deploy/compose.yaml");
    yaml_documents(&read(&path), "deploy/compose.yaml")
        .pop()
        .expect("a document in deploy/compose.yaml")
}

/// A scalar as the text a process would see.
fn scalar(value: &Yaml) -> String {
    match value {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Null => String::new(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// A compose `environment` (a map, or a list of `KEY=VALUE`).
fn compose_environment(value: Option<&Yaml>) -> Vec<(String, String)> {
    match value {
        Some(Yaml::Mapping(map)) => map.iter().map(|(k, v)| (scalar(k), scalar(v))).collect(),
        Some(Yaml::Sequence(items)) => items
            .iter()
            .map(|item| {
                let item = scalar(item);
                let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A compose `command` or k8s `args`: the words.
fn yaml_words(value: Option<&Yaml>) -> Vec<String> {
    match value {
        Some(Yaml::Sequence(items)) => items.iter().map(scalar).collect(),
        Some(Yaml::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// Whether a compose service runs the rightsdesk image.
fn runs_rightsdesk(service: &Yaml) -> bool {
    service.get("build").is_some()
        || service
            .get("image")
            .and_then(Yaml::as_str)
            .is_some_and(|i| i.starts_with("rightsdesk"))
}

/// The rightsdesk services of compose.yaml, each over the image's ENV and health check.
fn compose_deployed() -> Vec<Deployed> {
    let compose = compose();
    let image = image();
    let services = compose
        .get("services")
        .and_then(Yaml::as_mapping)
        .expect("services in deploy/compose.yaml");
    let mut out = Vec::new();
    for (name, service) in services {
        if !runs_rightsdesk(service) {
            continue;
        }
        let name = scalar(name);
        let mut deployed = Deployed {
            origin: format!("deploy/compose.yaml: service {name}"),
            command: yaml_words(service.get("command"))
                .first()
                .cloned()
                .unwrap_or_else(|| image.command.clone()),
            env: image.env.clone(),
            ..Deployed::default()
        };
        deployed.set_env(compose_environment(service.get("environment")));
        for port in service
            .get("ports")
            .and_then(Yaml::as_sequence)
            .into_iter()
            .flatten()
        {
            let target = match port {
                Yaml::Mapping(_) => port.get("target").map(scalar).unwrap_or_default(),
                other => {
                    let text = scalar(other);
                    text.rsplit(':').next().unwrap_or("").to_owned()
                }
            };
            let target = target
                .trim_end_matches("/tcp")
                .parse()
                .expect("a container port");
            deployed.ports.push((target, "ports".to_owned()));
        }
        for port in yaml_words(service.get("expose")) {
            let port = port
                .trim_end_matches("/tcp")
                .parse()
                .expect("an exposed port");
            deployed.ports.push((port, "expose".to_owned()));
        }
        match service.get("healthcheck") {
            Some(check) if check.get("disable").and_then(Yaml::as_bool) == Some(true) => {}
            Some(check) if check.get("test").is_some() => {
                let test = yaml_words(check.get("test")).join(" ");
                for port in probed_ports(&test) {
                    deployed.ports.push((port, "healthcheck".to_owned()));
                }
            }
            // The image's HEALTHCHECK applies.
            _ => deployed.ports.extend(
                image
                    .ports
                    .iter()
                    .filter(|(_, w)| w == "HEALTHCHECK")
                    .map(|(p, _)| (*p, "the image's HEALTHCHECK".to_owned())),
            ),
        }
        deployed.stop_secs = service
            .get("stop_grace_period")
            .map(|v| seconds(&scalar(v)));
        out.push(deployed);
    }
    out
}

/// Every YAML document under deploy/kubernetes, with its file.
fn kubernetes_sources() -> Vec<(String, Yaml)> {
    deploy_files()
        .into_iter()
        .filter(|p| shown(p).starts_with("deploy/kubernetes"))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .flat_map(|p| {
            let origin = shown(&p);
            yaml_documents(&read(&p), &origin)
                .into_iter()
                .map(move |doc| (origin.clone(), doc))
        })
        .collect()
}

fn kind(object: &Yaml) -> &str {
    object.get("kind").and_then(Yaml::as_str).unwrap_or("")
}

fn name(object: &Yaml) -> &str {
    object
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Yaml::as_str)
        .unwrap_or("")
}

/// A ConfigMap's `data` or a Secret's `stringData`, found by kind and name.
fn kubernetes_env(
    objects: &[(String, Yaml)],
    of_kind: &str,
    called: &str,
) -> Vec<(String, String)> {
    let field = if of_kind == "Secret" {
        "stringData"
    } else {
        "data"
    };
    let object = objects
        .iter()
        .find(|(_, o)| kind(o) == of_kind && name(o) == called)
        .unwrap_or_else(|| panic!("no {of_kind} {called} under deploy/kubernetes"));
    object
        .1
        .get(field)
        .and_then(Yaml::as_mapping)
        .into_iter()
        .flatten()
        .map(|(k, v)| (scalar(k), scalar(v)))
        .collect()
}

/// A pod template's labels.
fn pod_labels(object: &Yaml) -> Option<&Yaml> {
    object
        .get("spec")?
        .get("template")?
        .get("metadata")?
        .get("labels")
}

/// Whether every label of `selector` is among `labels`.
fn selects(selector: &Yaml, labels: Option<&Yaml>) -> bool {
    selector
        .as_mapping()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// A pod template's spec.
fn pod_spec(object: &Yaml) -> Option<&Yaml> {
    object.get("spec")?.get("template")?.get("spec")
}

fn containers(object: &Yaml) -> Vec<&Yaml> {
    pod_spec(object)
        .and_then(|s| s.get("containers"))
        .and_then(Yaml::as_sequence)
        .map(|c| c.iter().collect())
        .unwrap_or_default()
}

/// A probe's or a Service's port, its name resolved among the container's ports.
fn resolve_port(port: &Yaml, container: &Yaml) -> Option<u16> {
    if let Some(n) = port.as_u64() {
        return u16::try_from(n).ok();
    }
    let wanted = port.as_str()?;
    container
        .get("ports")?
        .as_sequence()?
        .iter()
        .find(|p| p.get("name").and_then(Yaml::as_str) == Some(wanted))
        .and_then(|p| p.get("containerPort")?.as_u64())
        .and_then(|n| u16::try_from(n).ok())
}

/// Each container of the Deployments and Jobs in `objects`, over the image's ENV, with
/// the ConfigMaps and Secrets it names (looked up in `objects`, then in `secrets`).
fn kubernetes_deployed(objects: &[(String, Yaml)], secrets: &[(String, Yaml)]) -> Vec<Deployed> {
    let image = image();
    let mut out = Vec::new();
    for (file, object) in objects {
        if !matches!(kind(object), "Deployment" | "Job") {
            continue;
        }
        let grace = pod_spec(object)
            .and_then(|s| s.get("terminationGracePeriodSeconds"))
            .and_then(Yaml::as_u64);
        for container in containers(object) {
            let container_name = container.get("name").and_then(Yaml::as_str).unwrap_or("");
            let mut deployed = Deployed {
                origin: format!(
                    "{file}: {} {}, container {container_name}",
                    kind(object),
                    name(object)
                ),
                command: yaml_words(container.get("args"))
                    .first()
                    .cloned()
                    .unwrap_or_else(|| image.command.clone()),
                env: image.env.clone(),
                stop_secs: grace,
                ..Deployed::default()
            };
            for source in container
                .get("envFrom")
                .and_then(Yaml::as_sequence)
                .into_iter()
                .flatten()
            {
                for (field, of_kind) in [("configMapRef", "ConfigMap"), ("secretRef", "Secret")] {
                    if let Some(called) = source
                        .get(field)
                        .and_then(|r| r.get("name"))
                        .and_then(Yaml::as_str)
                    {
                        let from_objects = objects
                            .iter()
                            .any(|(_, o)| kind(o) == of_kind && name(o) == called);
                        let pool = if from_objects { objects } else { secrets };
                        deployed.set_env(kubernetes_env(pool, of_kind, called));
                    }
                }
            }
            for var in container
                .get("env")
                .and_then(Yaml::as_sequence)
                .into_iter()
                .flatten()
            {
                let key = var.get("name").map(scalar).unwrap_or_default();
                let value = var.get("value").map(scalar).unwrap_or_default();
                deployed.set_env([(key, value)]);
            }
            for port in container
                .get("ports")
                .and_then(Yaml::as_sequence)
                .into_iter()
                .flatten()
            {
                if let Some(p) = port.get("containerPort").and_then(Yaml::as_u64) {
                    deployed.ports.push((
                        u16::try_from(p).expect("a port"),
                        "containerPort".to_owned(),
                    ));
                }
            }
            for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
                let Some(probe_spec) = container.get(probe) else {
                    continue;
                };
                for action in ["httpGet", "tcpSocket", "grpc"] {
                    if let Some(port) = probe_spec.get(action).and_then(|a| a.get("port")) {
                        let resolved = resolve_port(port, container).unwrap_or_else(|| {
                            panic!(
                                "{}: {probe}: port {port:?} is not a port of the container",
                                deployed.origin
                            )
                        });
                        deployed.ports.push((resolved, probe.to_owned()));
                    }
                }
            }
            out.push(deployed);
        }
    }
    out
}

/// The systemd units' ExecStart subcommand, Environment= lines and EnvironmentFile=
/// (read from its `.example` beside the unit; systemd lets the file override).
fn systemd_deployed() -> Vec<Deployed> {
    let dir = repo().join("deploy/systemd");
    let mut out = Vec::new();
    for unit in systemd_units() {
        let text = read(&unit);
        let mut deployed = Deployed {
            origin: shown(&unit),
            ..Deployed::default()
        };
        let mut file_env = Vec::new();
        for (key, value) in unit_settings(&text) {
            match key.as_str() {
                "ExecStart" => {
                    let words: Vec<&str> = value.split_whitespace().collect();
                    assert_eq!(
                        words.first().copied(),
                        Some("/usr/local/bin/rightsdesk"),
                        "{}: ExecStart runs /usr/local/bin/rightsdesk",
                        deployed.origin
                    );
                    deployed.command = words.get(1).map(|w| (*w).to_owned()).unwrap_or_default();
                }
                "Environment" => {
                    let (k, v) = value
                        .split_once('=')
                        .unwrap_or_else(|| panic!("{}: Environment={value}", deployed.origin));
                    deployed.set_env([(k.to_owned(), unquote(v))]);
                }
                "EnvironmentFile" => {
                    let path = value.trim_start_matches('-');
                    let file_name = Path::new(path).file_name().expect("a file name");
                    let example = dir.join(format!("{}.example", file_name.to_string_lossy()));
                    assert!(
                        example.exists(),
                        "{}: EnvironmentFile={path} has no example beside the unit ({})",
                        deployed.origin,
                        shown(&example)
                    );
                    file_env.extend(env_file(&read(&example)));
                }
                "TimeoutStopSec" => deployed.stop_secs = Some(seconds(&value)),
                _ => {}
            }
        }
        deployed.set_env(file_env);
        out.push(deployed);
    }
    out
}

fn systemd_units() -> Vec<PathBuf> {
    deploy_files()
        .into_iter()
        .filter(|p| shown(p).starts_with("deploy/systemd/"))
        .filter(|p| p.extension().is_some_and(|e| e == "service"))
        .collect()
}

/// A unit file's `Key=Value` settings, comments and section headers skipped.
fn unit_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', ';', '[']))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Every container and unit deploy/ describes.
fn everything_deployed() -> Vec<Deployed> {
    let mut all = vec![image()];
    all.extend(compose_deployed());
    let sources = kubernetes_sources();
    all.extend(kubernetes_deployed(&sources, &sources));
    all.extend(systemd_deployed());
    all
}

// ---------------------------------------------------------------------------------------
// The binary.

/// `rightsdesk config check --json` with exactly `env` (no inherited RIGHTSDESK__
/// variable, no configuration file), in an empty directory.
fn config_check(env: &BTreeMap<String, String>) -> Output {
    let dir = TempDir::new();
    Command::new(env!("CARGO_BIN_EXE_rightsdesk"))
        .args(["config", "check", "--json"])
        .current_dir(&dir.0)
        .env_clear()
        .envs(env)
        .output()
        .expect("run rightsdesk config check")
}

/// The effective value of `variable` in `config check`'s JSON.
fn effective<'a>(config: &'a Json, variable: &str) -> Option<&'a Json> {
    variable
        .trim_start_matches("RIGHTSDESK__")
        .split("__")
        .try_fold(config, |value, key| value.get(key.to_ascii_lowercase()))
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn deploy_names_only_documented_variables() {
    let documented = documented_variables();
    assert!(
        documented.len() > 50,
        "docs/configuration.md lists its variables ({} found)",
        documented.len()
    );
    let mut problems = Vec::new();
    for file in deploy_files() {
        let text = fs::read(&file).expect("read a deploy file");
        for name in variable_names(&String::from_utf8_lossy(&text)) {
            if !documented.contains(&name) {
                problems.push(format!(
                    "{}: {name} is not in docs/configuration.md",
                    shown(&file)
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn deploy_configurations_pass_config_check() {
    let deployed = everything_deployed();
    assert!(deployed.len() >= 9, "{deployed:#?}");
    let mut problems = Vec::new();
    for d in &deployed {
        let env: BTreeMap<String, String> = d
            .env
            .iter()
            .map(|(k, v)| (k.clone(), stand_in(v)))
            .collect();
        let out = config_check(&env);
        if !out.status.success() {
            problems.push(format!(
                "{} ({}): rightsdesk config check exited {:?}:\n{}",
                d.origin,
                d.command,
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let config: Json = serde_json::from_slice(&out.stdout).expect("config check prints JSON");
        // Each variable took effect as written.
        for (variable, given) in &env {
            let shown_value = match effective(&config, variable) {
                Some(Json::String(s)) if s.contains(MASK) => continue,
                Some(Json::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "nothing".to_owned(),
            };
            if &shown_value != given {
                problems.push(format!(
                    "{}: {variable}={given:?} reads as {shown_value}",
                    d.origin
                ));
            }
        }
        // Stop timeouts above what the process takes to stop.
        let shutdown = match d.command.as_str() {
            "serve" => effective(&config, "RIGHTSDESK__HTTP__SHUTDOWN_TIMEOUT_SECS"),
            "worker" => effective(&config, "RIGHTSDESK__WORKER__SHUTDOWN_GRACE_SECS"),
            _ => None,
        }
        .and_then(Json::as_u64);
        if let (Some(stop), Some(shutdown)) = (d.stop_secs, shutdown)
            && stop <= shutdown
        {
            problems.push(format!(
                "{}: {stop} s to stop is not above the {shutdown} s {} takes",
                d.origin, d.command
            ));
        }
        println!("{}: {} variables, config check passed", d.origin, env.len());
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn deploy_config_check_refuses_a_misspelt_variable() {
    let mut env: BTreeMap<String, String> = image()
        .env
        .iter()
        .map(|(k, v)| (k.clone(), stand_in(v)))
        .collect();
    env.insert(
        "RIGHTSDESK__HTTP__BINDD".to_owned(),
        "0.0.0.0:8080".to_owned(),
    );
    let out = config_check(&env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bindd"), "{stderr}");
}

#[test]
fn deploy_ports_are_the_ports_it_binds() {
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut check = |deployed: &[Deployed]| {
        for d in deployed {
            for (port, what) in &d.ports {
                checked += 1;
                match d.bind().map(|b| (b, port_of(&stand_in(b)))) {
                    Some((_, Some(bound))) if bound == *port => {}
                    Some((bind, _)) => problems.push(format!(
                        "{} ({}): {what} port {port} is not the port of its bind {bind}",
                        d.origin, d.command
                    )),
                    None => problems.push(format!(
                        "{} ({}): {what} port {port}, but it binds no port",
                        d.origin, d.command
                    )),
                }
            }
        }
    };
    check(&everything_deployed());
    if let Some(rendered) = kustomize() {
        check(&kubernetes_deployed(&rendered, &kubernetes_sources()));
    }
    assert!(checked >= 10, "{checked} ports checked");

    // The Service sends its traffic to the port `serve` binds.
    let sources = kubernetes_sources();
    let deployed = kubernetes_deployed(&sources, &sources);
    for (file, service) in sources.iter().filter(|(_, o)| kind(o) == "Service") {
        let selector = service
            .get("spec")
            .and_then(|s| s.get("selector"))
            .expect("a selector");
        let (_, target) = sources
            .iter()
            .find(|(_, o)| kind(o) == "Deployment" && selects(selector, pod_labels(o)))
            .unwrap_or_else(|| {
                panic!("{file}: no Deployment's pods carry the labels {selector:?}")
            });
        let container = containers(target)[0];
        let bind = deployed
            .iter()
            .find(|d| d.origin.contains(&format!("Deployment {}", name(target))))
            .and_then(Deployed::bind)
            .and_then(port_of)
            .expect("the Deployment's bind");
        for port in service
            .get("spec")
            .and_then(|s| s.get("ports"))
            .and_then(Yaml::as_sequence)
            .into_iter()
            .flatten()
        {
            let target_port = port.get("targetPort").or(port.get("port")).expect("a port");
            let resolved = resolve_port(target_port, container);
            assert_eq!(
                resolved,
                Some(bind),
                "{file}: Service {} targetPort {target_port:?} is not port {bind} that {} binds",
                name(service),
                name(target)
            );
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn deploy_containerfile_builds_and_runs_as_described() {
    let stages = containerfile();
    assert!(
        stages.len() >= 2,
        "deploy/Containerfile: a multi-stage build ({} FROM)",
        stages.len()
    );
    let build = &stages[0];
    assert!(
        build.iter().any(|i| i.keyword == "RUN"
            && i.args
                .contains("cargo build --release --locked -p rightsdesk")),
        "deploy/Containerfile: the first stage runs cargo build --release --locked -p rightsdesk"
    );
    let last = |keyword: &str| final_stage(keyword).last().cloned();
    let user = last("USER").expect("deploy/Containerfile: a USER in the final stage");
    let uid = user.split(':').next().unwrap_or("");
    assert!(
        !matches!(uid, "" | "0" | "root"),
        "deploy/Containerfile: USER {user} is root"
    );
    assert!(
        last("HEALTHCHECK").is_some_and(|h| h.contains("/healthz")),
        "a HEALTHCHECK on /healthz"
    );
    assert!(last("EXPOSE").is_some(), "an EXPOSE");
    assert_eq!(
        last("ENTRYPOINT").map(|e| words(&e)),
        Some(vec!["rightsdesk".to_owned()])
    );
    assert_eq!(
        last("CMD").map(|c| words(&c)),
        Some(vec!["serve".to_owned()])
    );
    let workdir = last("WORKDIR").expect("a WORKDIR");
    let volumes: Vec<String> = final_stage("VOLUME")
        .iter()
        .flat_map(|v| words(v))
        .collect();
    let image = image();
    let bundles = image
        .env
        .get("RIGHTSDESK__BUNDLES__DIR")
        .expect("RIGHTSDESK__BUNDLES__DIR in ENV");
    for wanted in [&workdir, bundles] {
        assert!(
            volumes.contains(wanted),
            "deploy/Containerfile: VOLUME {wanted} ({volumes:?})"
        );
    }
    let database = image
        .env
        .get("RIGHTSDESK__DATABASE__URL")
        .expect("RIGHTSDESK__DATABASE__URL in ENV");
    assert!(
        database.starts_with(&format!("sqlite://{workdir}/")),
        "deploy/Containerfile: the SQLite file {database} is in the data volume {workdir}"
    );

    // The build context holds the workspace and vendor/, and nothing heavy.
    let manifest = read(&repo().join("Cargo.toml"));
    let members = manifest
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .expect("workspace members in Cargo.toml")
        .0;
    let mut needed: Vec<String> = members
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .map(|m| m.split('/').next().unwrap_or(m).to_owned())
        .collect();
    needed.extend(["vendor", "Cargo.toml", "Cargo.lock"].map(str::to_owned));
    needed.sort();
    needed.dedup();
    let copied: Vec<String> = build
        .iter()
        .filter(|i| i.keyword == "COPY")
        .flat_map(|i| words(&i.args))
        .collect();
    let ignore = read(&repo().join(".dockerignore"));
    let ignored: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for path in &needed {
        assert!(
            copied.contains(path),
            "deploy/Containerfile: the build stage copies {path}"
        );
        assert!(
            !ignored.contains(&path.as_str()),
            ".dockerignore: {path} is needed by the build"
        );
    }
    for heavy in ["**/target", ".git"] {
        assert!(
            ignored.contains(&heavy),
            ".dockerignore: leaves out {heavy}"
        );
    }
}

#[test]
fn deploy_compose_runs_postgres_a_migration_the_api_and_workers() {
    let compose = compose();
    let services = compose
        .get("services")
        .and_then(Yaml::as_mapping)
        .expect("services");
    let service = |n: &str| {
        services
            .get(n)
            .unwrap_or_else(|| panic!("deploy/compose.yaml: no service {n}"))
    };
    let postgres = service("postgres");
    assert!(
        postgres
            .get("image")
            .and_then(Yaml::as_str)
            .is_some_and(|i| i.contains("postgres:16")),
        "PostgreSQL 16"
    );
    let test = yaml_words(postgres.get("healthcheck").and_then(|h| h.get("test")));
    assert!(
        test.iter().any(|w| w == "pg_isready"),
        "postgres: a pg_isready health check"
    );
    let named_volumes = compose
        .get("volumes")
        .and_then(Yaml::as_mapping)
        .expect("named volumes");
    for volume in yaml_words(postgres.get("volumes")) {
        let source = volume.split(':').next().unwrap_or("");
        assert!(
            named_volumes.contains_key(source),
            "postgres: the named volume {source}"
        );
    }

    let deployed = compose_deployed();
    let by_command = |c: &str| {
        deployed
            .iter()
            .filter(|d| d.command == c)
            .collect::<Vec<_>>()
    };
    let replicas = |d: &Deployed| {
        let n = d.origin.rsplit(' ').next().unwrap_or("");
        service(n)
            .get("deploy")
            .and_then(|x| x.get("replicas"))
            .and_then(Yaml::as_u64)
            .unwrap_or(1)
    };
    assert_eq!(by_command("migrate").len(), 1, "one migrate service");
    let api = by_command("serve");
    assert_eq!(api.len(), 1, "one api service");
    assert_eq!(
        api[0]
            .env
            .get("RIGHTSDESK__WORKER__IN_PROCESS")
            .map(String::as_str),
        Some("false"),
        "the api leaves the background work to the workers"
    );
    let workers: u64 = by_command("worker").iter().map(|d| replicas(d)).sum();
    assert!(workers >= 2, "two workers or more ({workers})");
    for d in &deployed {
        let url = d
            .env
            .get("RIGHTSDESK__DATABASE__URL")
            .map(String::as_str)
            .unwrap_or("");
        assert!(
            url.starts_with("postgres://") && url.contains("@postgres:"),
            "{}: database {url}",
            d.origin
        );
        let smtp = d
            .env
            .get("RIGHTSDESK__MAIL__SMTP__HOST")
            .expect("an SMTP host");
        assert!(
            services.contains_key(smtp.as_str()),
            "{}: the SMTP host {smtp} is a service",
            d.origin
        );
        assert_eq!(
            d.env.get("RIGHTSDESK__MAIL__TRANSPORT").map(String::as_str),
            Some("smtp")
        );
        if d.command == "worker" {
            assert!(
                d.env.contains_key("RIGHTSDESK__WORKER__BIND"),
                "{}: worker.bind for its health check",
                d.origin
            );
        }
        // Secrets come from deploy/.env, never from the file itself.
        for secret in [
            "RIGHTSDESK__SECURITY__TOKEN_SECRET",
            "RIGHTSDESK__SECURITY__REQUESTER_TOKEN_KEY",
            "RIGHTSDESK__EVIDENCE__ENCRYPTION_KEY",
        ] {
            let value = d.env.get(secret).map(String::as_str).unwrap_or("");
            assert!(
                value.starts_with("${") && value.ends_with('}'),
                "{}: {secret} is {value:?}",
                d.origin
            );
        }
    }
}

/// Checks the Kubernetes objects: each Deployment probed, sized, non-root, with a
/// disruption budget; the migration Job; the shared bundles volume.
fn check_kubernetes(objects: &[(String, Yaml)], label: &str) {
    let deployments: Vec<&Yaml> = objects
        .iter()
        .map(|(_, o)| o)
        .filter(|o| kind(o) == "Deployment")
        .collect();
    let names: Vec<&str> = deployments.iter().map(|d| name(d)).collect();
    assert!(
        names.contains(&"rightsdesk-api") && names.contains(&"rightsdesk-worker"),
        "{label}: the Deployments rightsdesk-api and rightsdesk-worker ({names:?})"
    );
    let claim = objects
        .iter()
        .map(|(_, o)| o)
        .find(|o| kind(o) == "PersistentVolumeClaim")
        .unwrap_or_else(|| panic!("{label}: a PersistentVolumeClaim for bundles.dir"));
    let modes = yaml_words(claim.get("spec").and_then(|s| s.get("accessModes")));
    assert!(
        modes.iter().any(|m| m == "ReadWriteMany"),
        "{label}: the bundles volume is ReadWriteMany"
    );
    let bundles_dir = kubernetes_env(objects, "ConfigMap", "rightsdesk-config")
        .into_iter()
        .find(|(k, _)| k == "RIGHTSDESK__BUNDLES__DIR")
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{label}: RIGHTSDESK__BUNDLES__DIR in the ConfigMap"));

    for deployment in &deployments {
        let what = format!("{label}: Deployment {}", name(deployment));
        let replicas = deployment
            .get("spec")
            .and_then(|s| s.get("replicas"))
            .and_then(Yaml::as_u64);
        assert!(replicas.unwrap_or(1) >= 2, "{what}: two replicas or more");
        let pod = pod_spec(deployment).expect("a pod template");
        let pod_non_root = pod
            .get("securityContext")
            .and_then(|s| s.get("runAsNonRoot"))
            .and_then(Yaml::as_bool);
        let labels = pod_labels(deployment);
        for container in containers(deployment) {
            let security = container.get("securityContext");
            let flag = |key: &str| security.and_then(|s| s.get(key)).and_then(Yaml::as_bool);
            assert!(
                flag("runAsNonRoot").or(pod_non_root) == Some(true),
                "{what}: runAsNonRoot"
            );
            assert_eq!(
                flag("readOnlyRootFilesystem"),
                Some(true),
                "{what}: readOnlyRootFilesystem"
            );
            assert_eq!(
                flag("allowPrivilegeEscalation"),
                Some(false),
                "{what}: allowPrivilegeEscalation false"
            );
            let dropped = yaml_words(
                security
                    .and_then(|s| s.get("capabilities"))
                    .and_then(|c| c.get("drop")),
            );
            assert!(
                dropped.iter().any(|c| c == "ALL"),
                "{what}: capabilities drop ALL"
            );
            for probe in ["livenessProbe", "readinessProbe"] {
                assert!(container.get(probe).is_some(), "{what}: a {probe}");
            }
            let resources = container.get("resources");
            for (level, key) in [
                ("requests", "memory"),
                ("requests", "cpu"),
                ("limits", "memory"),
            ] {
                assert!(
                    resources
                        .and_then(|r| r.get(level))
                        .and_then(|l| l.get(key))
                        .is_some(),
                    "{what}: resources.{level}.{key}"
                );
            }
            let volume_of = |mount_path: &str| {
                let mount = container
                    .get("volumeMounts")
                    .and_then(Yaml::as_sequence)?
                    .iter()
                    .find(|m| m.get("mountPath").and_then(Yaml::as_str) == Some(mount_path))?;
                let volume_name = mount.get("name")?;
                pod.get("volumes")?
                    .as_sequence()?
                    .iter()
                    .find(|v| v.get("name") == Some(volume_name))
            };
            let claimed = volume_of(&bundles_dir)
                .and_then(|v| v.get("persistentVolumeClaim"))
                .and_then(|c| c.get("claimName"))
                .and_then(Yaml::as_str);
            assert_eq!(
                claimed,
                Some(name(claim)),
                "{what}: {bundles_dir} is the shared claim"
            );
        }
        let budgeted = objects.iter().map(|(_, o)| o).any(|o| {
            kind(o) == "PodDisruptionBudget"
                && o.get("spec")
                    .and_then(|s| s.get("minAvailable"))
                    .and_then(Yaml::as_u64)
                    == Some(1)
                && o.get("spec")
                    .and_then(|s| s.get("selector"))
                    .and_then(|s| s.get("matchLabels"))
                    .is_some_and(|wanted| selects(wanted, labels))
        });
        assert!(
            budgeted,
            "{what}: a PodDisruptionBudget with minAvailable 1"
        );
    }
    let migrates = objects
        .iter()
        .map(|(_, o)| o)
        .filter(|o| kind(o) == "Job")
        .any(|job| {
            containers(job)
                .iter()
                .any(|c| yaml_words(c.get("args")) == ["migrate"])
        });
    assert!(migrates, "{label}: a Job running rightsdesk migrate");
    let services = objects.iter().filter(|(_, o)| kind(o) == "Service").count();
    assert_eq!(services, 1, "{label}: one Service, for the API");
}

/// `kubectl kustomize deploy/kubernetes/base`, parsed; none without kubectl.
fn kustomize() -> Option<Vec<(String, Yaml)>> {
    if !on_path("kubectl") {
        println!("kubectl is not on PATH: the rendering of deploy/kubernetes/base is not checked");
        return None;
    }
    let out = Command::new("kubectl")
        .args(["kustomize", "deploy/kubernetes/base"])
        .current_dir(repo())
        .output()
        .expect("run kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/kubernetes/base:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let label = "kubectl kustomize deploy/kubernetes/base".to_owned();
    Some(
        yaml_documents(&text, &label)
            .into_iter()
            .map(|d| (label.clone(), d))
            .collect(),
    )
}

#[test]
fn deploy_kubernetes_base_is_complete_and_renders() {
    let sources = kubernetes_sources();
    // Only what kustomization.yaml lists (the Secret template is not).
    let listed: Vec<String> = sources
        .iter()
        .find(|(_, o)| kind(o) == "Kustomization")
        .map(|(_, k)| yaml_words(k.get("resources")))
        .expect("deploy/kubernetes/base/kustomization.yaml");
    let in_base: Vec<(String, Yaml)> = sources
        .iter()
        .filter(|(file, _)| listed.iter().any(|r| file.ends_with(&format!("/{r}"))))
        .cloned()
        .collect();
    check_kubernetes(&in_base, "deploy/kubernetes/base");
    for (file, object) in &sources {
        assert!(
            object
                .get("metadata")
                .and_then(|m| m.get("namespace"))
                .is_none(),
            "{file}: {} {} names a namespace: the base is namespace-agnostic",
            kind(object),
            name(object)
        );
    }
    let secret = kubernetes_env(&sources, "Secret", "rightsdesk-secrets");
    assert!(
        secret.iter().all(
            |(k, v)| (k == "RIGHTSDESK__DATABASE__URL" && v.contains("change-me"))
                || v.starts_with('<')
        ),
        "the Secret template holds placeholders only: {secret:?}"
    );
    if let Some(rendered) = kustomize() {
        check_kubernetes(&rendered, "kubectl kustomize deploy/kubernetes/base");
    }
}

#[test]
fn deploy_systemd_units_are_hardened_and_verify() {
    let units = systemd_units();
    assert!(
        units.len() >= 2,
        "deploy/systemd: the serve and worker units"
    );
    for unit in &units {
        let settings = unit_settings(&read(unit));
        let has = |key: &str, value: &str| settings.iter().any(|(k, v)| k == key && v == value);
        for (key, value) in [
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("PrivateDevices", "yes"),
            ("CapabilityBoundingSet", ""),
            ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
            ("SystemCallFilter", "@system-service"),
            ("StateDirectory", "rightsdesk"),
            ("Restart", "on-failure"),
            ("KillSignal", "SIGTERM"),
            ("EnvironmentFile", "/etc/rightsdesk/rightsdesk.env"),
        ] {
            assert!(has(key, value), "{}: {key}={value}", shown(unit));
        }
        for key in ["MemoryMax", "TimeoutStopSec", "RuntimeDirectory"] {
            assert!(
                settings.iter().any(|(k, _)| k == key),
                "{}: {key}=",
                shown(unit)
            );
        }
        assert!(
            has("DynamicUser", "yes") || settings.iter().any(|(k, _)| k == "User"),
            "{}: its own user",
            shown(unit)
        );
    }
    let commands: Vec<String> = systemd_deployed().into_iter().map(|d| d.command).collect();
    for wanted in ["serve", "worker"] {
        assert!(
            commands.iter().any(|c| c == wanted),
            "deploy/systemd: a unit runs {wanted}"
        );
    }

    if !on_path("systemd-analyze") {
        println!("systemd-analyze is not on PATH: the units are not verified");
        return;
    }
    // verify checks that ExecStart= exists: point the copies at the binary under test.
    let dir = TempDir::new();
    let mut to_verify = Vec::new();
    for unit in &units {
        let file_name = unit
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        let text = read(unit).replace(
            "/usr/local/bin/rightsdesk",
            env!("CARGO_BIN_EXE_rightsdesk"),
        );
        fs::write(dir.0.join(&file_name), text).expect("copy a unit");
        // A template is verified through an instance of it.
        to_verify.push(dir.0.join(file_name.replace("@.service", "@1.service")));
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&to_verify)
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .expect("run systemd-analyze verify");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let unit_names: Vec<String> = units
        .iter()
        .map(|u| {
            u.file_name()
                .expect("a name")
                .to_string_lossy()
                .replace("@.service", "@")
        })
        .collect();
    let about_ours: Vec<&str> = report
        .lines()
        .filter(|l| unit_names.iter().any(|n| l.contains(n.as_str())))
        .collect();
    for line in report.lines().filter(|l| !about_ours.contains(l)) {
        println!("systemd-analyze (not about our units): {line}");
    }
    assert!(
        out.status.success() && about_ours.is_empty(),
        "systemd-analyze verify ({:?}):\n{}",
        out.status.code(),
        about_ours.join("\n")
    );
}
