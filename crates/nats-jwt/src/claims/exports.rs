//! Exports: streams and services an account offers to others.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::limits::OperatorLimits;
use super::ser;
use crate::subject::Subject;
use crate::validation::{IssueKind, ValidationIssue};

/// Whether an export/import is a stream or a service. Wire: `"stream"` / `"service"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportType {
    /// Messages flow from exporter to importer.
    Stream,
    /// Requests flow from importer to exporter, replies back.
    Service,
}

impl fmt::Display for ExportType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExportType::Stream => "stream",
            ExportType::Service => "service",
        })
    }
}

/// How a service responds. Wire: `"Singleton"`, `"Stream"`, `"Chunked"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResponseType {
    /// One response per request (the default).
    Singleton,
    /// Any number of responses.
    Stream,
    /// One response split into chunks.
    Chunked,
}

/// Service latency tracking: `{"sampling": 1..100 | "headers", "results": subject}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceLatency {
    /// Percentage of requests sampled, 1..=100; 0 means "headers" (sample when headers ask).
    pub sampling: u8,
    /// Where latency results are published (no wildcards).
    pub results: Subject,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Sampling {
    Percent(u8),
    Headers(String),
}

#[derive(Serialize, Deserialize)]
struct LatencyWire {
    sampling: Sampling,
    results: Subject,
}

impl Serialize for ServiceLatency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sampling = if self.sampling == 0 {
            Sampling::Headers("headers".into())
        } else {
            Sampling::Percent(self.sampling)
        };
        LatencyWire {
            sampling,
            results: self.results.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ServiceLatency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = LatencyWire::deserialize(d)?;
        let sampling = match w.sampling {
            Sampling::Percent(p) => p,
            Sampling::Headers(h) if h.eq_ignore_ascii_case("headers") => 0,
            Sampling::Headers(h) => {
                return Err(serde::de::Error::custom(format!(
                    "invalid latency sampling {h:?} (expected 1..100 or \"headers\")"
                )));
            }
        };
        Ok(ServiceLatency {
            sampling,
            results: w.results,
        })
    }
}

/// One export of an account (Go order of fields kept on the wire).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    /// Label.
    #[serde(default, skip_serializing_if = "ser::opt_str_empty")]
    pub name: Option<String>,
    /// Exported subject (may contain wildcards).
    pub subject: Subject,
    /// Stream or service.
    #[serde(rename = "type")]
    pub export_type: ExportType,
    /// Private export: importers need an activation token.
    #[serde(default, skip_serializing_if = "ser::is_false")]
    pub token_req: bool,
    /// Revoked activations: importer account key (or `"*"`) → unix seconds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revocations: BTreeMap<String, i64>,
    /// Service response type (services only; absent = Singleton).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_type: Option<ResponseType>,
    /// Service response threshold, nanoseconds.
    #[serde(
        default,
        rename = "response_threshold",
        skip_serializing_if = "ser::opt_i64_zero"
    )]
    pub response_threshold_ns: Option<i64>,
    /// Latency tracking (services only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_latency: Option<ServiceLatency>,
    /// 1-based token position that must be `*` and hold the importer's account key.
    #[serde(default, skip_serializing_if = "opt_u32_zero")]
    pub account_token_position: Option<u32>,
    /// Tooling hint: list this export publicly.
    #[serde(default, skip_serializing_if = "ser::is_false")]
    pub advertise: bool,
    /// Services only: message traces may cross into the exporting account.
    #[serde(default, skip_serializing_if = "ser::is_false")]
    pub allow_trace: bool,
    /// Description.
    #[serde(default, skip_serializing_if = "ser::opt_str_empty")]
    pub description: Option<String>,
    /// Info URL.
    #[serde(default, skip_serializing_if = "ser::opt_str_empty")]
    pub info_url: Option<String>,
}

fn opt_u32_zero(v: &Option<u32>) -> bool {
    matches!(v, None | Some(0))
}

impl Export {
    /// A public export of `subject` with nothing else set.
    pub fn new(subject: Subject, export_type: ExportType) -> Self {
        Export {
            name: None,
            subject,
            export_type,
            token_req: false,
            revocations: BTreeMap::new(),
            response_type: None,
            response_threshold_ns: None,
            service_latency: None,
            account_token_position: None,
            advertise: false,
            allow_trace: false,
            description: None,
            info_url: None,
        }
    }

    /// Whether an activation for `importer` issued at `iat` is revoked by this export.
    pub fn is_activation_revoked(&self, importer: &str, iat: i64) -> bool {
        [importer, "*"]
            .iter()
            .any(|k| self.revocations.get(*k).is_some_and(|&t| t >= iat))
    }

    fn validate(&self, issues: &mut Vec<ValidationIssue>) {
        let subject = self.subject.to_string();
        let err =
            |issues: &mut Vec<ValidationIssue>, kind| issues.push(ValidationIssue::error(kind));
        if self.export_type == ExportType::Stream {
            if self.response_type.is_some() {
                err(
                    issues,
                    IssueKind::ResponseTypeOnStream {
                        subject: subject.clone(),
                    },
                );
            }
            if self.response_threshold_ns.is_some_and(|t| t != 0) {
                err(
                    issues,
                    IssueKind::ResponseThresholdOnStream {
                        subject: subject.clone(),
                    },
                );
            }
            if self.service_latency.is_some() {
                err(
                    issues,
                    IssueKind::LatencyOnStream {
                        subject: subject.clone(),
                    },
                );
            }
            if self.allow_trace {
                err(
                    issues,
                    IssueKind::AllowTraceOnStreamExport {
                        subject: subject.clone(),
                    },
                );
            }
        }
        if self.response_threshold_ns.is_some_and(|t| t < 0) {
            err(
                issues,
                IssueKind::NegativeResponseThreshold {
                    subject: subject.clone(),
                },
            );
        }
        if let Some(lat) = &self.service_latency {
            if lat.sampling > 100 {
                err(
                    issues,
                    IssueKind::InvalidLatencySampling {
                        subject: subject.clone(),
                        sampling: lat.sampling,
                    },
                );
            }
            if lat.results.has_wildcards() {
                err(
                    issues,
                    IssueKind::LatencyResultsWildcard {
                        subject: subject.clone(),
                        results: lat.results.to_string(),
                    },
                );
            }
        }
        if let Some(pos) = self.account_token_position.filter(|p| *p != 0) {
            let token = self.subject.tokens().nth(pos as usize - 1);
            if !self.subject.has_wildcards() {
                // Go's rule: the importer's key fills a wildcard, so a literal subject has
                // no place for it (reported as such, not as a bad position).
                err(
                    issues,
                    IssueKind::AccountTokenPositionWithoutWildcard {
                        subject: subject.clone(),
                    },
                );
            } else if token != Some("*") {
                err(
                    issues,
                    IssueKind::InvalidAccountTokenPosition {
                        subject: subject.clone(),
                        position: pos,
                    },
                );
            }
        }
        if self.subject.queue().is_some() {
            err(issues, IssueKind::QueueInExport { subject });
        }
        super::account::validate_info(&self.description, &self.info_url, issues);
    }
}

/// Validates the export list of an account against its limits.
pub(crate) fn validate_exports(
    exports: &[Export],
    limits: &OperatorLimits,
    issues: &mut Vec<ValidationIssue>,
) {
    let max = limits.account.exports;
    if max >= 0 && exports.len() as i64 > max {
        issues.push(ValidationIssue::error(IssueKind::TooManyExports {
            count: exports.len(),
            max,
        }));
    }
    for e in exports {
        e.validate(issues);
        if e.subject.has_wildcards() && !limits.account.wildcards && max != -1 {
            issues.push(ValidationIssue::error(
                IssueKind::WildcardExportNotAllowed {
                    subject: e.subject.to_string(),
                },
            ));
        }
    }
    for (i, a) in exports.iter().enumerate() {
        for b in &exports[i + 1..] {
            if a.export_type == b.export_type
                && (a.subject.is_subset_of(&b.subject) || b.subject.is_subset_of(&a.subject))
            {
                issues.push(ValidationIssue::error(IssueKind::OverlappingExports {
                    first: a.subject.to_string(),
                    second: b.subject.to_string(),
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Subject {
        Subject::new(x).unwrap()
    }

    fn issues_of(e: &Export) -> Vec<IssueKind> {
        let mut issues = Vec::new();
        validate_exports(
            std::slice::from_ref(e),
            &OperatorLimits::default(),
            &mut issues,
        );
        issues.into_iter().map(|i| i.kind).collect()
    }

    #[test]
    fn account_token_position_needs_a_wildcard_subject() {
        let mut e = Export::new(s("svc.req"), ExportType::Service);
        e.account_token_position = Some(1);
        assert!(
            issues_of(&e)
                .iter()
                .any(|k| matches!(k, IssueKind::AccountTokenPositionWithoutWildcard { .. }))
        );
        e.subject = s("svc.*");
        e.account_token_position = Some(2);
        assert!(issues_of(&e).is_empty());
        e.account_token_position = Some(3);
        assert!(
            issues_of(&e)
                .iter()
                .any(|k| matches!(k, IssueKind::InvalidAccountTokenPosition { .. }))
        );
    }

    #[test]
    fn allow_trace_is_for_service_exports_only() {
        let mut e = Export::new(s("a.b"), ExportType::Service);
        e.allow_trace = true;
        assert!(issues_of(&e).is_empty());
        e.export_type = ExportType::Stream;
        assert!(
            issues_of(&e)
                .iter()
                .any(|k| matches!(k, IssueKind::AllowTraceOnStreamExport { .. }))
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["allow_trace"], true);
        let back: Export = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
    }
}
