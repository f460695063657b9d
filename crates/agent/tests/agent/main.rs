//! Component tests: the agent against a real Gantry API server in process (real store, real
//! kube-rs client), with the recording fake runtime, puller and host.

mod support;

mod node;
mod outage;
mod pods;
mod spec;
