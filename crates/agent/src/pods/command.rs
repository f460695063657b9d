//! The argv a container runs: the image's entrypoint/cmd merged with the pod's
//! command/args, and `$(VAR)` references expanded.
//! One thing to know: a pod `command` replaces the image's entrypoint *and* its cmd
//! (https://kubernetes.io/docs/tasks/inject-data-application/define-command-argument-container/).

use std::collections::HashMap;

/// Kubernetes' merge rule:
/// no command, no args → entrypoint + cmd; args only → entrypoint + args;
/// command only → command; both → command + args.
pub fn merge_argv(
    entrypoint: &[String],
    cmd: &[String],
    command: Option<&[String]>,
    args: Option<&[String]>,
) -> Vec<String> {
    let command = command.filter(|c| !c.is_empty());
    let args = args.filter(|a| !a.is_empty());
    match (command, args) {
        (Some(c), Some(a)) => c.iter().chain(a).cloned().collect(),
        (Some(c), None) => c.to_vec(),
        (None, Some(a)) => entrypoint.iter().chain(a).cloned().collect(),
        (None, None) => entrypoint.iter().chain(cmd).cloned().collect(),
    }
}

/// Expands `$(NAME)` from `vars`; `$$` escapes a `$`; unknown references stay as written.
pub fn expand(input: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('(') {
            match tail.find(')') {
                Some(end) => {
                    let name = &tail[..end];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &tail[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = tail;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn merges_like_kubernetes() {
        let ep = v(&["/entry"]);
        let cmd = v(&["--default"]);
        assert_eq!(
            merge_argv(&ep, &cmd, None, None),
            v(&["/entry", "--default"])
        );
        assert_eq!(
            merge_argv(&ep, &cmd, None, Some(&v(&["x"]))),
            v(&["/entry", "x"])
        );
        assert_eq!(
            merge_argv(&ep, &cmd, Some(&v(&["sh", "-c"])), None),
            v(&["sh", "-c"])
        );
        assert_eq!(
            merge_argv(&ep, &cmd, Some(&v(&["sh"])), Some(&v(&["-c", "true"]))),
            v(&["sh", "-c", "true"])
        );
        assert_eq!(
            merge_argv(&[], &v(&["sh"]), Some(&[]), None),
            v(&["sh"]),
            "an empty command counts as unset"
        );
    }

    #[test]
    fn expands_references() {
        let vars = HashMap::from([("A".to_string(), "1".to_string())]);
        assert_eq!(expand("$(A)-$(B)", &vars), "1-$(B)");
        assert_eq!(expand("$$(A) $ x", &vars), "$(A) $ x");
        assert_eq!(expand("$(A", &vars), "$(A");
        assert_eq!(expand("plain", &vars), "plain");
    }
}
