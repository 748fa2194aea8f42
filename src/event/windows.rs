//! The Windows token model held by `Privileges::Windows`: integrity level,
//! elevation, and the token's privileges with their attribute bits.

/// `SE_PRIVILEGE_ENABLED_BY_DEFAULT`: on in the token's default state.
pub const SE_PRIVILEGE_ENABLED_BY_DEFAULT: u32 = 0x0000_0001;
/// `SE_PRIVILEGE_ENABLED`: on right now. This bit alone decides "enabled".
pub const SE_PRIVILEGE_ENABLED: u32 = 0x0000_0002;
/// `SE_PRIVILEGE_REMOVED`: removed from the token (cannot be enabled again).
pub const SE_PRIVILEGE_REMOVED: u32 = 0x0000_0004;
/// `SE_PRIVILEGE_USED_FOR_ACCESS`: was used to gain access to an object.
pub const SE_PRIVILEGE_USED_FOR_ACCESS: u32 = 0x8000_0000;

/// One token privilege: `{"name":..., "enabled":..., "enabled_by_default":...,
/// "removed":..., "used_for_access":..., "attributes":"0x..."}` in JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinPrivilege {
    /// `name`: e.g. `SeDebugPrivilege` (from `LookupPrivilegeNameW`), or
    /// `LUID 0x<high>:<low>` when the name could not be looked up.
    pub name: String,
    /// `attributes`: the raw `LUID_AND_ATTRIBUTES.Attributes` bits.
    pub attributes: u32,
}

impl WinPrivilege {
    /// `enabled`: the ENABLED bit is set. Tested as a bit, not by comparing
    /// the whole word: `== ENABLED|ENABLED_BY_DEFAULT` would drop privileges
    /// enabled at run time (and any with USED_FOR_ACCESS set).
    pub fn enabled(&self) -> bool {
        self.attributes & SE_PRIVILEGE_ENABLED != 0
    }
    /// `enabled_by_default`.
    pub fn enabled_by_default(&self) -> bool {
        self.attributes & SE_PRIVILEGE_ENABLED_BY_DEFAULT != 0
    }
    /// `removed`.
    pub fn removed(&self) -> bool {
        self.attributes & SE_PRIVILEGE_REMOVED != 0
    }
    /// `used_for_access`.
    pub fn used_for_access(&self) -> bool {
        self.attributes & SE_PRIVILEGE_USED_FOR_ACCESS != 0
    }
}

/// The mandatory integrity level, from the RID of the token's integrity SID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrityLevel {
    Untrusted,
    Low,
    Medium,
    MediumPlus,
    High,
    System,
    Protected,
    /// A RID between the well-known levels, kept as is.
    Other(u32),
}

impl IntegrityLevel {
    /// Maps a mandatory-label RID (`SECURITY_MANDATORY_*_RID`) to a level.
    pub fn from_rid(rid: u32) -> Self {
        match rid {
            0x0000 => Self::Untrusted,
            0x1000 => Self::Low,
            0x2000 => Self::Medium,
            0x2100 => Self::MediumPlus,
            0x3000 => Self::High,
            0x4000 => Self::System,
            0x5000 => Self::Protected,
            other => Self::Other(other),
        }
    }
    /// The RID (`token.integrity_rid` in JSON), for consumers comparing numbers.
    pub fn rid(self) -> u32 {
        match self {
            Self::Untrusted => 0,
            Self::Low => 0x1000,
            Self::Medium => 0x2000,
            Self::MediumPlus => 0x2100,
            Self::High => 0x3000,
            Self::System => 0x4000,
            Self::Protected => 0x5000,
            Self::Other(rid) => rid,
        }
    }
    /// `integrity` in JSON: `untrusted`, `low`, `medium`, `medium_plus`,
    /// `high`, `system`, `protected`, or `rid_0x....` for other values.
    pub fn name(self) -> String {
        match self {
            Self::Untrusted => "untrusted".into(),
            Self::Low => "low".into(),
            Self::Medium => "medium".into(),
            Self::MediumPlus => "medium_plus".into(),
            Self::High => "high".into(),
            Self::System => "system".into(),
            Self::Protected => "protected".into(),
            Self::Other(rid) => format!("rid_0x{rid:04x}"),
        }
    }
}

/// `TOKEN_ELEVATION_TYPE`: how UAC split (or did not split) the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElevationType {
    /// `default`: no split token (UAC off, or a service / built-in account).
    Default,
    /// `full`: the elevated half of a split token.
    Full,
    /// `limited`: the filtered, non-elevated half of a split token.
    Limited,
}

impl ElevationType {
    /// From the raw `TokenElevationType` value (1, 2, 3); `None` otherwise.
    pub fn from_raw(v: i32) -> Option<Self> {
        match v {
            1 => Some(Self::Default),
            2 => Some(Self::Full),
            3 => Some(Self::Limited),
            _ => None,
        }
    }
    /// `elevation_type` in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Full => "full",
            Self::Limited => "limited",
        }
    }
}

/// What a Windows process token says, read as soon as the process was seen.
/// Every part is optional: the process may be gone or access denied, and
/// the event's `incomplete` list then says which part is missing and why.
/// In JSON this is the `token` object; the owner is the top-level `user`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowsToken {
    /// `token.privileges`: every privilege in the token, with its state.
    pub privileges: Option<Vec<WinPrivilege>>,
    /// `token.integrity` (name) and `token.integrity_rid` (number).
    pub integrity: Option<IntegrityLevel>,
    /// `token.elevation_type`.
    pub elevation: Option<ElevationType>,
    /// `token.session_id`: the Terminal Services session.
    pub session_id: Option<u32>,
    /// `token.user_sid`: the token user's SID, e.g. `S-1-5-18`.
    pub user_sid: Option<String>,
    /// The token user as `DOMAIN\user`; rendered as `user`.
    pub owner: Option<String>,
}

impl WindowsToken {
    /// Names of the enabled privileges, in token order (the CSV cell).
    pub fn enabled_names(&self) -> Vec<&str> {
        self.privileges
            .iter()
            .flatten()
            .filter(|p| p.enabled())
            .map(|p| p.name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: [u32; 4] = [
        SE_PRIVILEGE_ENABLED_BY_DEFAULT,
        SE_PRIVILEGE_ENABLED,
        SE_PRIVILEGE_REMOVED,
        SE_PRIVILEGE_USED_FOR_ACCESS,
    ];

    fn privilege(attributes: u32) -> WinPrivilege {
        WinPrivilege {
            name: "SeTestPrivilege".into(),
            attributes,
        }
    }

    /// The whole-word test [`WinPrivilege::enabled`] must not be: enabled
    /// only if the word equals exactly ENABLED|ENABLED_BY_DEFAULT.
    fn equality_enabled(attributes: u32) -> bool {
        attributes == SE_PRIVILEGE_ENABLED | SE_PRIVILEGE_ENABLED_BY_DEFAULT
    }

    #[test]
    fn every_flag_combination_decodes_independently() {
        for combo in 0u32..16 {
            let attributes = (0..4)
                .filter(|i| combo & (1 << i) != 0)
                .fold(0, |acc, i| acc | FLAGS[i]);
            let p = privilege(attributes);
            let state = [
                p.enabled_by_default(),
                p.enabled(),
                p.removed(),
                p.used_for_access(),
            ];
            for (i, got) in state.into_iter().enumerate() {
                assert_eq!(got, combo & (1 << i) != 0, "combo {combo:04b} flag {i}");
            }
            // Unknown high bits never change the four states.
            assert_eq!(privilege(attributes | 0x0000_0100).enabled(), p.enabled());
        }
    }

    #[test]
    fn an_equality_test_of_the_word_would_drop_privileges() {
        // Enabled at run time (AdjustTokenPrivileges) without being on by
        // default: enabled, yet the equality test drops it.
        let runtime = SE_PRIVILEGE_ENABLED;
        assert!(privilege(runtime).enabled());
        assert!(!equality_enabled(runtime), "equality misses this one");
        // Enabled by default and then used: USED_FOR_ACCESS breaks equality.
        let used =
            SE_PRIVILEGE_ENABLED | SE_PRIVILEGE_ENABLED_BY_DEFAULT | SE_PRIVILEGE_USED_FOR_ACCESS;
        assert!(privilege(used).enabled());
        assert!(!equality_enabled(used));
        // And the equality test's own case still counts.
        assert!(privilege(SE_PRIVILEGE_ENABLED | SE_PRIVILEGE_ENABLED_BY_DEFAULT).enabled());
        // Enabled by default but disabled now: not enabled (both agree).
        assert!(!privilege(SE_PRIVILEGE_ENABLED_BY_DEFAULT).enabled());
        // Every disagreement between the two is a privilege equality drops.
        let dropped = (0u32..16)
            .map(|c| {
                (0..4)
                    .filter(|i| c & (1 << i) != 0)
                    .fold(0, |a, i| a | FLAGS[i])
            })
            .filter(|&a| privilege(a).enabled() != equality_enabled(a))
            .inspect(|&a| assert!(privilege(a).enabled(), "{a:#x}"))
            .count();
        assert_eq!(dropped, 7);
    }

    #[test]
    fn enabled_names_keep_token_order() {
        let token = WindowsToken {
            privileges: Some(vec![
                WinPrivilege {
                    name: "SeShutdownPrivilege".into(),
                    attributes: 0,
                },
                WinPrivilege {
                    name: "SeChangeNotifyPrivilege".into(),
                    attributes: SE_PRIVILEGE_ENABLED | SE_PRIVILEGE_ENABLED_BY_DEFAULT,
                },
                WinPrivilege {
                    name: "SeDebugPrivilege".into(),
                    attributes: SE_PRIVILEGE_ENABLED,
                },
            ]),
            ..WindowsToken::default()
        };
        assert_eq!(
            token.enabled_names(),
            ["SeChangeNotifyPrivilege", "SeDebugPrivilege"]
        );
        assert!(WindowsToken::default().enabled_names().is_empty());
    }

    #[test]
    fn integrity_and_elevation_names() {
        let rids = [0, 0x1000, 0x2000, 0x2100, 0x3000, 0x4000, 0x5000, 0x2010];
        let names: Vec<String> = rids
            .iter()
            .map(|&r| IntegrityLevel::from_rid(r).name())
            .collect();
        assert_eq!(
            names,
            [
                "untrusted",
                "low",
                "medium",
                "medium_plus",
                "high",
                "system",
                "protected",
                "rid_0x2010"
            ]
        );
        assert_eq!(
            (1..=3)
                .map(|v| ElevationType::from_raw(v).unwrap().as_str())
                .collect::<Vec<_>>(),
            ["default", "full", "limited"]
        );
        for rid in rids {
            assert_eq!(IntegrityLevel::from_rid(rid).rid(), rid);
        }
        assert_eq!(ElevationType::from_raw(0), None);
        assert_eq!(ElevationType::from_raw(4), None);
    }
}
// ---- end Windows token data -------------------------------------------------
