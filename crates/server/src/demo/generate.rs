//! The demo's people and their rows, generated from a seed.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::schema::spec;
use super::words::*;
use super::{NO_DATA, WELL_KNOWN};

/// A value of a generated row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Int(i64),
    Text(String),
    Null,
}

impl Val {
    pub(super) fn to_db(&self) -> sea_orm::Value {
        match self {
            Self::Int(i) => sea_orm::Value::BigInt(Some(*i)),
            Self::Text(s) => sea_orm::Value::String(Some(s.clone())),
            Self::Null => sea_orm::Value::String(None),
        }
    }
}

impl From<i64> for Val {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<bool> for Val {
    fn from(b: bool) -> Self {
        Self::Int(i64::from(b))
    }
}

impl From<&str> for Val {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl From<String> for Val {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<&String> for Val {
    fn from(s: &String) -> Self {
        Self::Text(s.clone())
    }
}

impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// Every generated row, by table, each in its table's column order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dataset {
    pub tables: BTreeMap<&'static str, Vec<Vec<Val>>>,
}

impl Dataset {
    pub fn rows(&self) -> usize {
        self.tables.values().map(Vec::len).sum()
    }

    /// The values of `column` in `table`.
    pub fn column(&self, table: &str, column: &str) -> Vec<&Val> {
        let Some(i) = spec(table).and_then(|t| t.columns.iter().position(|(n, _)| *n == column))
        else {
            return Vec::new();
        };
        self.tables
            .get(table)
            .map(|rows| rows.iter().filter_map(|r| r.get(i)).collect())
            .unwrap_or_default()
    }
}

/// Generates the demo data: [`WELL_KNOWN`] with rows in every table, then `people`
/// generated people with data in a random subset of the categories, then some rows of
/// nobody in particular (visitors' access logs, calls from unknown numbers).
pub fn generate(seed: u64, people: u32) -> Dataset {
    let mut g = Gen::new(seed);
    g.well_known();
    for _ in 0..people {
        g.someone();
    }
    for _ in 0..people / 2 {
        g.anonymous_visit();
    }
    for _ in 0..people / 10 {
        g.unknown_caller();
    }
    g.data
}

struct Company {
    name: String,
    domain: String,
    province: &'static str,
    city: &'static str,
}

struct Person {
    name: String,
    /// The given name and the surname in pinyin, for user names.
    pinyin: (String, String),
    email: String,
    /// A second address some forms were filled in with.
    other_email: Option<String>,
    mobile: String,
    company: Company,
    position: &'static str,
    account: Option<i64>,
}

impl Person {
    fn student(&self) -> bool {
        self.position == "学生"
    }
}

/// The categories a generated person may have data in, with how likely each is.
const CHANCES: &[(&str, f64)] = &[
    ("account", 0.55),
    ("access_logs", 0.15),
    ("downloads", 0.4),
    ("trials", 0.15),
    ("surveys", 0.2),
    ("compatibility_certification", 0.04),
    ("consultations", 0.2),
    ("feedback", 0.15),
    ("tickets", 0.12),
    ("business_opportunities", 0.06),
    ("events", 0.25),
    ("training", 0.12),
    ("partner_portal", 0.05),
    ("marketing", 0.45),
    ("forum", 0.15),
];

struct Gen {
    rng: StdRng,
    data: Dataset,
    next_id: BTreeMap<&'static str, i64>,
    emails: HashSet<String>,
    mobiles: HashSet<String>,
    usernames: HashSet<String>,
    serial: i64,
}

/// 2023-01-01 00:00, the start of the demo's history.
fn epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2023, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

/// Days of history: 2023-01-01 to 2026-05-31.
const HISTORY_DAYS: i64 = 1_247;

fn at(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

impl Gen {
    fn new(seed: u64) -> Self {
        let mut emails = HashSet::new();
        let mut mobiles = HashSet::new();
        for p in [WELL_KNOWN, NO_DATA] {
            emails.insert(p.email.to_owned());
            mobiles.insert(p.mobile.to_owned());
        }
        Self {
            rng: StdRng::seed_from_u64(seed),
            data: Dataset::default(),
            next_id: BTreeMap::new(),
            emails,
            mobiles,
            usernames: HashSet::new(),
            serial: 0,
        }
    }

    /// The next id of `table` (the website's accounts are numbered from 100001).
    fn id(&mut self, table: &'static str) -> i64 {
        let start = if table == "users" { 100_001 } else { 1 };
        let next = self.next_id.entry(table).or_insert(start);
        let id = *next;
        *next += 1;
        id
    }

    fn insert(&mut self, table: &'static str, fields: Vec<(&'static str, Val)>) {
        let Some(t) = spec(table) else {
            debug_assert!(false, "no table {table}");
            return;
        };
        debug_assert!(
            fields
                .iter()
                .all(|(f, _)| t.columns.iter().any(|(c, _)| c == f)),
            "a field that {table} does not have"
        );
        let mut fields = fields;
        let row = t
            .columns
            .iter()
            .map(|(c, _)| {
                fields
                    .iter_mut()
                    .find(|(f, _)| f == c)
                    .map_or(Val::Null, |(_, v)| std::mem::replace(v, Val::Null))
            })
            .collect();
        self.data.tables.entry(table).or_default().push(row);
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.rng.random_range(0..xs.len())]
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn between(&mut self, low: i64, high: i64) -> i64 {
        self.rng.random_range(low..=high)
    }

    /// A moment in the demo's history, in office hours more often than not.
    fn moment(&mut self) -> NaiveDateTime {
        let day = self.between(0, HISTORY_DAYS - 1);
        let secs = if self.chance(0.8) {
            self.between(9 * 3600, 18 * 3600)
        } else {
            self.between(0, 86_399)
        };
        epoch() + TimeDelta::days(day) + TimeDelta::seconds(secs)
    }

    /// A moment after `t`, but not after the end of the demo's history.
    fn later(&mut self, t: NaiveDateTime, min_secs: i64, max_secs: i64) -> NaiveDateTime {
        let end = epoch() + TimeDelta::days(HISTORY_DAYS) - TimeDelta::seconds(1);
        (t + TimeDelta::seconds(self.between(min_secs, max_secs))).min(end.max(t))
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.rng.random_range(0..10u8)))
            .collect()
    }

    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[self.rng.random_range(0..16usize)]))
            .collect()
    }

    fn password_hash(&mut self) -> String {
        format!(
            "$argon2id$v=19$m=19456,t=2,p=1${}${}",
            self.hex(22),
            self.hex(43)
        )
    }

    fn ip(&mut self) -> String {
        let prefix = self.pick(IP_PREFIXES);
        format!("{prefix}.{}.{}", self.between(0, 255), self.between(1, 254))
    }

    fn mobile(&mut self) -> String {
        loop {
            let m = format!("{}{}", self.pick(MOBILE_PREFIXES), self.digits(8));
            if self.mobiles.insert(m.clone()) {
                return m;
            }
        }
    }

    /// A free address `local@domain` (a number added when taken), lower case.
    fn email(&mut self, local: &str, domain: &str) -> String {
        let mut candidate = format!("{local}@{domain}").to_lowercase();
        while !self.emails.insert(candidate.clone()) {
            candidate = format!("{local}{}@{domain}", self.between(1, 999)).to_lowercase();
        }
        candidate
    }

    fn company(&mut self) -> Company {
        let (province, city, city_py) = self.pick(CITIES);
        let (brand, brand_py) = self.pick(BRANDS);
        let (trade, trade_py) = self.pick(TRADES);
        Company {
            name: format!("{city}{brand}{trade}有限公司"),
            domain: format!("{brand_py}{trade_py}-{city_py}.example.com"),
            province,
            city,
        }
    }

    fn person(&mut self) -> Person {
        let (surname, surname_py) = self.pick(SURNAMES);
        let (given, given_py) = if self.chance(0.7) {
            let (a, a_py) = self.pick(GIVEN);
            let (b, b_py) = self.pick(GIVEN);
            (format!("{a}{b}"), format!("{a_py}{b_py}"))
        } else {
            let (a, a_py) = self.pick(GIVEN);
            (a.to_owned(), a_py.to_owned())
        };
        let company = self.company();
        let work = format!("{given_py}.{surname_py}");
        let personal = format!("{surname_py}{given_py}");
        let email = if self.chance(0.6) {
            self.email(&work, &company.domain.clone())
        } else {
            let domain = self.pick(PERSONAL_DOMAINS);
            self.email(&personal, domain)
        };
        let other_email = if self.chance(0.15) {
            let domain = self.pick(PERSONAL_DOMAINS);
            let local = format!("{personal}{}", self.digits(2));
            Some(self.email(&local, domain))
        } else {
            None
        };
        let position = self.pick(POSITIONS);
        Person {
            name: format!("{surname}{given}"),
            pinyin: (given_py, surname_py.to_owned()),
            email,
            other_email,
            mobile: self.mobile(),
            company,
            position,
            account: None,
        }
    }

    /// The address `p` gave on a form: now and then the other one.
    fn form_email(&mut self, p: &Person) -> String {
        match &p.other_email {
            Some(other) if self.chance(0.4) => other.clone(),
            _ => p.email.clone(),
        }
    }

    /// 李雷: rows in every table.
    fn well_known(&mut self) {
        let company = Company {
            name: "上海星河数据科技有限公司".to_owned(),
            domain: "xinghedata-shanghai.example.com".to_owned(),
            province: "上海",
            city: "上海",
        };
        let mut p = Person {
            name: WELL_KNOWN.name.to_owned(),
            pinyin: ("lei".to_owned(), "li".to_owned()),
            email: WELL_KNOWN.email.to_owned(),
            other_email: None,
            mobile: WELL_KNOWN.mobile.to_owned(),
            company,
            position: "系统架构师",
            account: None,
        };
        self.account(&mut p);
        self.access_logs(&p, 4);
        self.downloads(&p, 2);
        self.trials(&p, 1);
        self.surveys(&p, 1);
        self.compatibility(&p, 1);
        self.consultations(&p, 1);
        self.feedback(&p, 1);
        self.calls(&p, 2);
        self.tickets(&p, 2);
        self.opportunities(&p, 1);
        self.events(&p, 2);
        self.training_enquiries(&p, 1);
        self.enrolments(&p, 1, true);
        self.training_partner(&p);
        self.partner(&p);
        self.marketing(&p, 3);
        self.forum(&p, 2);
    }

    /// A generated person with data in a random subset of the categories.
    fn someone(&mut self) {
        let mut p = self.person();
        let mut chosen: BTreeSet<&str> = CHANCES
            .iter()
            .filter(|(_, chance)| self.rng.random_bool(*chance))
            .map(|(c, _)| *c)
            .collect();
        if chosen.is_empty() {
            let (c, _) = self.pick(CHANCES);
            chosen.insert(c);
        }
        // The website's access logs are kept by account.
        if chosen.contains("access_logs") || (chosen.contains("trials") && self.chance(0.5)) {
            chosen.insert("account");
        }
        if chosen.contains("account") {
            self.account(&mut p);
        }
        for c in chosen {
            let n = self.between(1, 3) as usize;
            match c {
                "access_logs" => self.access_logs(&p, n * 3),
                "downloads" => self.downloads(&p, n),
                "trials" => self.trials(&p, 1),
                "surveys" => self.surveys(&p, n.min(2)),
                "compatibility_certification" => self.compatibility(&p, 1),
                "consultations" => self.consultations(&p, n.min(2)),
                "feedback" => {
                    self.feedback(&p, 1);
                    if self.chance(0.5) {
                        self.calls(&p, n);
                    }
                }
                "tickets" => self.tickets(&p, n),
                "business_opportunities" => self.opportunities(&p, n.min(2)),
                "events" => self.events(&p, n),
                "training" => {
                    if self.chance(0.5) {
                        self.training_enquiries(&p, 1);
                    }
                    let certified = self.chance(0.6);
                    self.enrolments(&p, 1, certified);
                    if self.chance(0.15) {
                        self.training_partner(&p);
                    }
                }
                "partner_portal" => self.partner(&p),
                "marketing" => self.marketing(&p, n * 2),
                "forum" => self.forum(&p, n),
                _ => {}
            }
        }
    }

    fn account(&mut self, p: &mut Person) {
        let id = self.id("users");
        p.account = Some(id);
        let created = self.moment();
        let last_login = self
            .chance(0.85)
            .then(|| self.later(created, 3_600, 300 * 86_400));
        let ip = last_login.map(|_| self.ip());
        let customer_type = if p.student() || self.chance(0.3) {
            "个人客户"
        } else {
            "企业客户"
        };
        let password_hash = self.password_hash();
        self.insert(
            "users",
            vec![
                ("id", id.into()),
                ("customer_type", customer_type.into()),
                ("name", (&p.name).into()),
                ("email", (&p.email).into()),
                ("mobile", (&p.mobile).into()),
                (
                    "company",
                    (!p.student()).then(|| p.company.name.clone()).into(),
                ),
                ("position", p.position.into()),
                ("password_hash", password_hash.into()),
                ("created_at", at(created).into()),
                ("last_login_at", last_login.map(at).into()),
                ("last_login_ip", ip.into()),
            ],
        );
    }

    fn access_logs(&mut self, p: &Person, n: usize) {
        let Some(user) = p.account else { return };
        let ip = self.ip();
        let agent = self.pick(USER_AGENTS);
        for _ in 0..n {
            let t = self.moment();
            self.visit(Some(user), t, &ip, agent);
        }
    }

    fn anonymous_visit(&mut self) {
        let ip = self.ip();
        let agent = self.pick(USER_AGENTS);
        let t = self.moment();
        self.visit(None, t, &ip, agent);
    }

    fn visit(
        &mut self,
        user: Option<i64>,
        t: NaiveDateTime,
        ip: &str,
        (user_agent, device, os): (&str, &str, &str),
    ) {
        let id = self.id("access_logs");
        let page = self.pick(PAGES);
        let referrer = self.pick(REFERRERS);
        let status = self.pick(&[200, 200, 200, 200, 304, 404]);
        let method = if page.ends_with("/apply") {
            "POST"
        } else {
            "GET"
        };
        self.insert(
            "access_logs",
            vec![
                ("id", id.into()),
                ("user_id", user.into()),
                ("accessed_at", at(t).into()),
                ("ip", ip.into()),
                ("method", method.into()),
                ("page", page.into()),
                ("referrer", referrer.into()),
                ("status", i64::from(status).into()),
                ("user_agent", user_agent.into()),
                ("device", device.into()),
                ("os", os.into()),
            ],
        );
    }

    fn downloads(&mut self, p: &Person, n: usize) {
        for _ in 0..n {
            let id = self.id("downloads");
            let product = self.pick(PRODUCTS);
            let document = self.pick(DOCUMENTS);
            let version = self.pick(VERSIONS);
            let t = self.moment();
            let sent = self.later(t, 30, 600);
            let user = p.account.filter(|_| self.chance(0.7));
            let email = self.form_email(p);
            self.insert(
                "downloads",
                vec![
                    ("id", id.into()),
                    ("user_id", user.into()),
                    ("name", (&p.name).into()),
                    ("company", (&p.company.name).into()),
                    ("email", email.into()),
                    ("mobile", (&p.mobile).into()),
                    ("product", product.into()),
                    ("document", document.into()),
                    ("version", version.into()),
                    ("requested_at", at(t).into()),
                    ("link_sent_at", at(sent).into()),
                ],
            );
        }
    }

    fn trials(&mut self, p: &Person, n: usize) {
        for _ in 0..n {
            let id = self.id("trials");
            let product = self.pick(PRODUCTS);
            let edition = self.pick(&["标准版", "企业版", "高级功能（容灾）", "高级功能（GPU）"]);
            let requirement = self.pick(TRIAL_NEEDS);
            let status = self.pick(&["已提交", "已联系", "试用中", "已结束", "已转化"]);
            let t = self.moment();
            let user = p.account.filter(|_| self.chance(0.8));
            let email = self.form_email(p);
            self.insert(
                "trials",
                vec![
                    ("id", id.into()),
                    ("user_id", user.into()),
                    ("name", (&p.name).into()),
                    ("company", (&p.company.name).into()),
                    ("email", email.into()),
                    ("mobile", (&p.mobile).into()),
                    ("product", product.into()),
                    ("edition", edition.into()),
                    ("requirement", requirement.into()),
                    ("status", status.into()),
                    ("applied_at", at(t).into()),
                ],
            );
            if status != "已提交" && status != "已联系" {
                let license = self.id("trial_licenses");
                let issued = self.later(t, 86_400, 5 * 86_400);
                let key = format!("ZS-TRIAL-{}-{}-{}", self.hex(4), self.hex(4), self.hex(4))
                    .to_uppercase();
                let nodes = self.pick(&[3, 3, 5, 8, 16]);
                self.insert(
                    "trial_licenses",
                    vec![
                        ("id", license.into()),
                        ("trial_id", id.into()),
                        ("license_key", key.into()),
                        ("nodes", i64::from(nodes).into()),
                        ("issued_at", at(issued).into()),
                        ("expires_at", at(issued + TimeDelta::days(30)).into()),
                    ],
                );
            }
        }
    }

    fn surveys(&mut self, p: &Person, n: usize) {
        for _ in 0..n {
            let id = self.id("survey_responses");
            let (survey, questions) = self.pick(SURVEYS);
            let industry = self.pick(INDUSTRIES);
            let t = self.moment();
            let email = self.form_email(p);
            self.insert(
                "survey_responses",
                vec![
                    ("id", id.into()),
                    ("survey", survey.into()),
                    ("name", (&p.name).into()),
                    ("company", (&p.company.name).into()),
                    ("email", email.into()),
                    ("mobile", (&p.mobile).into()),
                    ("industry", industry.into()),
                    ("submitted_at", at(t).into()),
                ],
            );
            for (no, (question, answers)) in questions.iter().enumerate() {
                let answer_id = self.id("survey_answers");
                let answer = self.pick(answers);
                self.insert(
                    "survey_answers",
                    vec![
                        ("id", answer_id.into()),
                        ("response_id", id.into()),
                        ("question_no", (no as i64 + 1).into()),
                        ("question", (*question).into()),
                        ("answer", answer.into()),
                    ],
                );
            }
        }
    }

    fn compatibility(&mut self, p: &Person, n: usize) {
        for _ in 0..n {
            let id = self.id("compatibility_applications");
            let (kind, product) = self.pick(PARTNER_PRODUCTS);
            let architecture = self.pick(ARCHITECTURES);
            let target = self.pick(PRODUCTS);
            let method = self.pick(&["远程测评", "现场测评", "自测后提交报告"]);
            let status = self.pick(&["已受理", "测评中", "已通过", "已通过", "未通过"]);
            let t = self.moment();
            let road = self.pick(ROADS);
            let address = format!(
                "{}{}市{road}{}号",
                if p.company.province == p.company.city {
                    String::new()
                } else {
                    format!("{}省", p.company.province)
                },
                p.company.city,
                self.between(1, 999)
            );
            let brand: String = p
                .company
                .name
                .chars()
                .skip(p.company.city.chars().count())
                .take(2)
                .collect();
            let version = self.between(1, 6);
            let logo = format!("logo-{}.png", self.hex(8));
            let email = self.form_email(p);
            self.insert(
                "compatibility_applications",
                vec![
                    ("id", id.into()),
                    ("contact_name", (&p.name).into()),
                    ("company", (&p.company.name).into()),
                    ("email", email.into()),
                    ("mobile", (&p.mobile).into()),
                    ("mailing_address", address.into()),
                    (
                        "product_name",
                        format!("{brand}{product} V{version}.0").into(),
                    ),
                    ("product_type", kind.into()),
                    ("architecture", architecture.into()),
                    (
                        "description",
                        format!("面向私有云场景的{product}，支持 {architecture} 平台").into(),
                    ),
                    ("logo_file", logo.into()),
                    ("target_product", target.into()),
                    ("test_method", method.into()),
                    ("status", status.into()),
                    ("applied_at", at(t).into()),
                ],
            );
        }
    }

    fn consultations(&mut self, p: &Person, n: usize) {
        for _ in 0..n {
            let id = self.id("consultations");
            let industry = self.pick(INDUSTRIES);
            let (topic, details) = self.pick(CONSULTATION_TOPICS);
            let status = self.pick(&["待跟进", "已联系", "方案交流中", "已关闭"]);
            let t = self.moment();
            let email = self.form_email(p);
            self.insert(
                "consultations",
                vec![
                    ("id", id.into()),
                    ("name", (&p.name).into()),
                    ("company", (&p.company.name).into()),
                    ("email", email.into()),
                    ("mobile", (&p.mobile).into()),
                    ("industry", industry.into()),
                    ("topic", topic.into()),
                    ("details", details.into()),
                    ("status", status.into()),
                    ("submitted_at", at(t).into()),
                ],
            );
        }
    }

    fn feedback(&mut self, p: &Person, n: usize) {
        for _ in 0..n {
            let id = self.id("feedback");
            let (kind, content) = self.pick(FEEDBACK);
            let preferred = self.pick(&["工作日上午", "工作日下午", "任意时间"]);
            let t = self.moment();
            let handled = self.chance(0.8).then(|| self.later(t, 1_800, 3 * 86_400));
            let email = self.form_email(p);
            self.insert(
                "feedback",
                vec![
                    ("id", id.into()),
                    ("kind", kind.into()),
                    ("name", (&p.name).into()),
                    ("company", (&p.company.name).into()),
                    ("email", email.into()),
                    ("mobile", (&p.mobile).into()),
                    ("content", content.into()),
                    ("preferred_time", preferred.into()),
                    ("submitted_at", at(t).into()),
                    ("handled_at", handled.map(at).into()),
                ],
            );
        }
    }

    fn calls(&mut self, p: &Person, n: usize) {
        for _ in 0..n {
            self.call(&p.mobile);
        }
    }

    fn unknown_caller(&mut self) {
        let mobile = self.mobile();
        self.call(&mobile);
    }

    fn call(&mut self, mobile: &str) {
        let id = self.id("call_records");
        let t = self.moment();
        let direction = self.pick(&["呼入", "呼入", "呼出"]);
        let summary = self.pick(CALL_SUMMARIES);
        let agent = format!("坐席 {:02}", self.between(1, 12));
        let recording = format!("rec/{}/{}.mp3", t.format("%Y/%m"), self.hex(12));
        let duration = self.between(45, 1_200);
        self.insert(
            "call_records",
            vec![
                ("id", id.into()),
                ("mobile", mobile.into()),
                ("direction", direction.into()),
                ("started_at", at(t).into()),
                ("duration_secs", duration.into()),
                ("agent", agent.into()),
                ("summary", summary.into()),
                ("recording_file", recording.into()),
            ],
        );
    }

    fn tickets(&mut self, p: &Person, n: usize) {
        for _ in 0..n {
            let id = self.id("tickets");
            let t = self.moment();
            self.serial += 1;
            let ticket_no = format!("T{}{:05}", t.format("%Y%m%d"), self.serial);
            let (title, kind, details) = self.pick(TICKET_TOPICS);
            let priority = self.pick(&["P1 紧急", "P2 高", "P3 中", "P3 中", "P4 低"]);
            let product = self.pick(PRODUCTS);
            let status = self.pick(&["处理中", "待客户反馈", "已解决", "已关闭", "已关闭"]);
            let closed =
                matches!(status, "已解决" | "已关闭").then(|| self.later(t, 3_600, 10 * 86_400));
            let confidential = self
                .chance(0.3)
                .then(|| format!("管理节点 IP 10.{}.0.10，账号 admin", self.between(0, 255)));
            let contact_time = self.pick(&["工作日 9:00-18:00", "任意时间", "晚上 20:00 后"]);
            let email = self.form_email(p);
            self.insert(
                "tickets",
                vec![
                    ("id", id.into()),
                    ("ticket_no", ticket_no.into()),
                    ("priority", priority.into()),
                    ("type", kind.into()),
                    ("product", product.into()),
                    ("title", title.into()),
                    ("details", details.into()),
                    ("confidential", confidential.into()),
                    ("submitter", (&p.name).into()),
                    ("email", email.into()),
                    ("mobile", (&p.mobile).into()),
                    ("company", (&p.company.name).into()),
                    ("contact_time", contact_time.into()),
                    ("status", status.into()),
                    ("created_at", at(t).into()),
                    ("closed_at", closed.map(at).into()),
                ],
            );
            let mut when = t;
            let messages = self.between(2, 4);
            for i in 0..messages {
                let message = self.id("ticket_messages");
                let (author, body) = if i % 2 == 0 {
                    ("客户", self.pick(CUSTOMER_MESSAGES))
                } else {
                    ("技术支持", self.pick(SUPPORT_MESSAGES))
                };
                let attachment = (author == "客户" && self.chance(0.4)).then(|| {
                    format!(
                        "{}-{}.tar.gz",
                        self.pick(&["mn-log", "screenshot", "sosreport"]),
                        self.hex(6)
                    )
                });
                self.insert(
                    "ticket_messages",
                    vec![
                        ("id", message.into()),
                        ("ticket_id", id.into()),
                        ("author", author.into()),
                        ("body", body.into()),
                        ("attachment", attachment.into()),
                        ("sent_at", at(when).into()),
                    ],
                );
                when = self.later(when, 600, 86_400);
            }
        }
    }

    fn opportunities(&mut self, p: &Person, n: usize) {
        for _ in 0..n {
            let id = self.id("business_opportunities");
            let (province, city, _) = self.pick(CITIES);
            let (customer, industry) = self.pick(END_CUSTOMERS);
            let project = self.pick(PROJECTS);
            let stage = self.pick(&[
                "初步接触",
                "方案交流",
                "POC 测试",
                "招投标",
                "商务谈判",
                "已签约",
            ]);
            let purchase = self.pick(&["公开招标", "竞争性谈判", "单一来源", "询价"]);
            let role = self.pick(&["项目负责人", "技术负责人", "采购负责人", "IT 主管"]);
            let t = self.moment();
            let sign = (t + TimeDelta::days(self.between(30, 240))).date();
            let amount = self.between(20, 800) * 10_000;
            let background = format!("{city}{customer}现有虚拟化平台到期，计划建设{project}");
            let partner = self.company();
            let email = self.form_email(p);
            self.insert(
                "business_opportunities",
                vec![
                    ("id", id.into()),
                    ("project_name", format!("{city}{customer}{project}").into()),
                    (
                        "expected_sign_date",
                        sign.format("%Y-%m-%d").to_string().into(),
                    ),
                    ("expected_amount", amount.into()),
                    ("stage", stage.into()),
                    ("purchase_method", purchase.into()),
                    ("background", background.into()),
                    ("end_customer", format!("{city}{customer}").into()),
                    ("province", province.into()),
                    ("city", city.into()),
                    ("industry", industry.into()),
                    ("contact_name", (&p.name).into()),
                    ("contact_role", role.into()),
                    ("email", email.into()),
                    ("mobile", (&p.mobile).into()),
                    ("partner_company", partner.name.into()),
                    ("reported_at", at(t).into()),
                ],
            );
            let mut when = t;
            for _ in 0..self.between(1, 3) {
                when = self.later(when, 86_400, 20 * 86_400);
                let followup = self.id("opportunity_followups");
                let note = self.pick(FOLLOWUPS);
                self.insert(
                    "opportunity_followups",
                    vec![
                        ("id", followup.into()),
                        ("opportunity_id", id.into()),
                        ("followed_at", at(when).into()),
                        ("note", note.into()),
                    ],
                );
            }
        }
    }

    fn events(&mut self, p: &Person, n: usize) {
        for _ in 0..n {
            let id = self.id("event_registrations");
            let (_, city, _) = self.pick(CITIES);
            let event = self.pick(EVENTS).replace("{city}", city);
            let t = self.moment();
            let checked_in = self.chance(0.7);
            let email = self.form_email(p);
            self.insert(
                "event_registrations",
                vec![
                    ("id", id.into()),
                    ("event", event.into()),
                    ("city", city.into()),
                    ("name", (&p.name).into()),
                    ("company", (&p.company.name).into()),
                    ("email", email.into()),
                    ("mobile", (&p.mobile).into()),
                    ("registered_at", at(t).into()),
                    ("checked_in", checked_in.into()),
                ],
            );
        }
    }

    fn training_enquiries(&mut self, p: &Person, n: usize) {
        for _ in 0..n {
            let id = self.id("training_enquiries");
            let course = self.pick(&["ZCCE", "ZCCA"]);
            let question = self.pick(TRAINING_QUESTIONS);
            let t = self.moment();
            let email = self.form_email(p);
            self.insert(
                "training_enquiries",
                vec![
                    ("id", id.into()),
                    ("course", course.into()),
                    ("name", (&p.name).into()),
                    (
                        "company",
                        (!p.student()).then(|| p.company.name.clone()).into(),
                    ),
                    ("email", email.into()),
                    ("mobile", (&p.mobile).into()),
                    ("question", question.into()),
                    ("submitted_at", at(t).into()),
                ],
            );
        }
    }

    fn enrolments(&mut self, p: &Person, n: usize, certified: bool) {
        for _ in 0..n {
            let id = self.id("training_enrolments");
            let course = self.pick(&["ZCCC", "ZCCT"]);
            let t = self.moment();
            let activated = self.later(t, 3_600, 3 * 86_400);
            let code = format!("{course}-{}", self.hex(10)).to_uppercase();
            let (school, grade, major) = if p.student() {
                let school = self.pick(SCHOOLS);
                let grade = self.pick(&["大二", "大三", "大四", "研一", "研二"]);
                let major =
                    self.pick(&["计算机科学与技术", "软件工程", "网络工程", "云计算技术应用"]);
                (Some(school), Some(grade), Some(major))
            } else {
                (None, None, None)
            };
            let email = self.form_email(p);
            self.insert(
                "training_enrolments",
                vec![
                    ("id", id.into()),
                    ("course", course.into()),
                    ("name", (&p.name).into()),
                    ("email", email.into()),
                    ("mobile", (&p.mobile).into()),
                    ("city", p.company.city.into()),
                    (
                        "company",
                        (!p.student()).then(|| p.company.name.clone()).into(),
                    ),
                    ("school", school.into()),
                    ("grade", grade.into()),
                    ("major", major.into()),
                    ("activation_code", code.into()),
                    ("applied_at", at(t).into()),
                    ("activated_at", at(activated).into()),
                ],
            );
            if certified {
                let certificate = self.id("certificates");
                let issued = self.later(activated, 30 * 86_400, 120 * 86_400);
                let kind = if course == "ZCCC" {
                    "ZCCC 云计算工程师（ZStack & 工信人才联合证书）"
                } else {
                    "ZCCT 云计算认证讲师"
                };
                let number = format!("ZS{}{:06}", issued.format("%Y"), certificate);
                self.insert(
                    "certificates",
                    vec![
                        ("id", certificate.into()),
                        ("enrolment_id", id.into()),
                        ("certificate_type", kind.into()),
                        ("certificate_no", number.into()),
                        ("city", p.company.city.into()),
                        ("issued_at", at(issued).into()),
                    ],
                );
            }
        }
    }

    fn training_partner(&mut self, p: &Person) {
        let id = self.id("training_partner_applications");
        let intention = self.pick(&[
            "希望成为授权培训中心，开展 ZCCE 认证培训",
            "高校联合培养合作，开设云计算课程",
            "企业内训合作",
        ]);
        let t = self.moment();
        let email = self.form_email(p);
        self.insert(
            "training_partner_applications",
            vec![
                ("id", id.into()),
                ("name", (&p.name).into()),
                ("email", email.into()),
                ("mobile", (&p.mobile).into()),
                ("city", p.company.city.into()),
                ("company", (&p.company.name).into()),
                ("position", p.position.into()),
                ("intention", intention.into()),
                ("applied_at", at(t).into()),
            ],
        );
    }

    fn partner(&mut self, p: &Person) {
        let id = self.id("partners");
        let t = self.moment();
        let (inviter_surname, _) = self.pick(SURNAMES);
        let (inviter_given, _) = self.pick(GIVEN);
        let capital = format!("{} 万元", self.pick(&[100, 500, 1_000, 2_000, 5_000]));
        let founded = NaiveDate::from_ymd_opt(
            i32::try_from(self.between(1998, 2020)).unwrap_or(2010),
            u32::try_from(self.between(1, 12)).unwrap_or(1),
            1,
        )
        .map(|d| d.format("%Y-%m-%d").to_string());
        let industries = self.pick(&[
            "金融,政府",
            "制造,能源",
            "教育,医疗",
            "运营商,交通",
            "政府,教育",
        ]);
        let password_hash = self.password_hash();
        let email = self.form_email(p);
        self.insert(
            "partners",
            vec![
                ("id", id.into()),
                ("name", (&p.name).into()),
                ("position", p.position.into()),
                ("company", (&p.company.name).into()),
                ("province", p.company.province.into()),
                ("city", p.company.city.into()),
                ("email", email.into()),
                ("mobile", (&p.mobile).into()),
                (
                    "inviter",
                    format!("渠道经理 {inviter_surname}{inviter_given}").into(),
                ),
                ("registered_capital", capital.into()),
                ("founded_on", founded.into()),
                ("industries", industries.into()),
                (
                    "website",
                    format!("https://www.{}", p.company.domain).into(),
                ),
                (
                    "introduction",
                    format!(
                        "{}是一家专注于云计算与数据中心建设的系统集成商",
                        p.company.name
                    )
                    .into(),
                ),
                ("password_hash", password_hash.into()),
                ("registered_at", at(t).into()),
            ],
        );
    }

    fn marketing(&mut self, p: &Person, messages: usize) {
        let id = self.id("marketing_contacts");
        let source = self.pick(&[
            "官网注册",
            "活动报名",
            "下载申请",
            "展会名片",
            "合作伙伴推荐",
        ]);
        let created = self.moment();
        let email_opt_in = self.chance(0.85);
        let sms_opt_in = self.chance(0.5);
        let unsubscribed = self
            .chance(0.1)
            .then(|| self.later(created, 86_400, 200 * 86_400));
        let email = self.form_email(p);
        self.insert(
            "marketing_contacts",
            vec![
                ("id", id.into()),
                ("name", (&p.name).into()),
                ("company", (&p.company.name).into()),
                ("position", p.position.into()),
                ("email", email.into()),
                ("mobile", (&p.mobile).into()),
                ("source", source.into()),
                ("email_opt_in", email_opt_in.into()),
                ("sms_opt_in", sms_opt_in.into()),
                ("created_at", at(created).into()),
                ("unsubscribed_at", unsubscribed.map(at).into()),
            ],
        );
        let mut when = created;
        for _ in 0..messages {
            when = self.later(when, 86_400, 60 * 86_400);
            let message = self.id("marketing_messages");
            let channel = if sms_opt_in && self.chance(0.3) {
                "短信"
            } else if self.chance(0.05) {
                "电话"
            } else {
                "邮件"
            };
            let campaign = self.pick(CAMPAIGNS);
            let opened =
                (channel == "邮件" && self.chance(0.4)).then(|| self.later(when, 60, 3 * 86_400));
            self.insert(
                "marketing_messages",
                vec![
                    ("id", message.into()),
                    ("contact_id", id.into()),
                    ("channel", channel.into()),
                    ("campaign", campaign.into()),
                    ("sent_at", at(when).into()),
                    ("opened_at", opened.map(at).into()),
                ],
            );
        }
    }

    fn forum(&mut self, p: &Person, downloads: usize) {
        let id = self.id("forum_users");
        let mut username = format!("{}_{}", p.pinyin.1, p.pinyin.0);
        while !self.usernames.insert(username.clone()) {
            username = format!("{}{}", p.pinyin.0, self.digits(3));
        }
        let reason = self.pick(&[
            "学习 ZStack 运维",
            "项目部署参考",
            "获取技术文档",
            "合作伙伴技术支持",
        ]);
        let registered = self.moment();
        let last_seen = self.later(registered, 86_400, 400 * 86_400);
        let password_hash = self.password_hash();
        self.insert(
            "forum_users",
            vec![
                ("id", id.into()),
                ("username", username.into()),
                // The forum's accounts are unique by address: always the main one.
                ("email", (&p.email).into()),
                ("reason", reason.into()),
                ("password_hash", password_hash.into()),
                ("registered_at", at(registered).into()),
                ("last_seen_at", at(last_seen).into()),
            ],
        );
        for _ in 0..downloads {
            let download = self.id("forum_downloads");
            let (topic, attachment) = self.pick(FORUM_TOPICS);
            let t = self.later(registered, 600, 300 * 86_400);
            self.insert(
                "forum_downloads",
                vec![
                    ("id", download.into()),
                    ("user_id", id.into()),
                    ("topic", topic.into()),
                    ("attachment", attachment.into()),
                    ("downloaded_at", at(t).into()),
                ],
            );
        }
    }
}
