//! The working-day calendar's table (SPEC §4): seeded with the bundled 2020–2026 years,
//! extended a year at a time by import, and watched for the years deadlines will need.

use chrono::{Duration, NaiveDate};
use rightsdesk_tests::TestApp;

const Y2027: &str = "# 2027, as a company would import it\ndate,kind,name\n2027-02-06,holiday,春节\n2027-02-08,holiday,春节\n2027-02-14,workday,春节\n";

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("a date")
}

#[tokio::test]
async fn the_bundled_years_are_there_and_an_import_adds_or_replaces_whole_years() {
    let app = TestApp::spawn().await;
    let years: Vec<i32> = app
        .services
        .holiday_years()
        .await
        .unwrap()
        .iter()
        .map(|y| y.year)
        .collect();
    assert_eq!(years, (2020..=2026).collect::<Vec<_>>());
    let calendar = app.services.work_calendar().await.unwrap();
    assert!(
        !calendar.is_working_day(d(2026, 2, 16)),
        "Spring Festival 2026"
    );
    assert!(
        calendar.is_working_day(d(2026, 2, 14)),
        "a make-up Saturday"
    );

    let report = app
        .services
        .import_holidays(Y2027, "y2027.csv")
        .await
        .unwrap();
    assert_eq!(report.years, [2027]);
    assert_eq!(report.days, 3);
    let calendar = app.services.work_calendar().await.unwrap();
    assert!(calendar.covers(2027));
    assert!(!calendar.is_working_day(d(2027, 2, 8)), "a Monday off");
    assert!(
        calendar.is_working_day(d(2027, 2, 9)),
        "an ordinary Tuesday"
    );
    assert!(calendar.is_working_day(d(2027, 2, 14)), "a make-up Sunday");

    // Importing 2026 again replaces that year only: the file's days are all it holds.
    let report = app
        .services
        .import_holidays("date,kind,name\n2026-10-01,holiday,国庆节\n", "fix.csv")
        .await
        .unwrap();
    assert_eq!(report.years, [2026]);
    let calendar = app.services.work_calendar().await.unwrap();
    assert!(calendar.is_working_day(d(2026, 2, 16)), "2026 was replaced");
    assert!(!calendar.is_working_day(d(2026, 10, 1)));
    assert!(!calendar.is_working_day(d(2025, 10, 1)), "2025 untouched");
    let listed = app.services.holiday_years().await.unwrap();
    let y2026 = listed.iter().find(|y| y.year == 2026).expect("2026");
    assert_eq!(
        (y2026.source.as_str(), y2026.holidays, y2026.workdays),
        ("fix.csv", 1, 0)
    );

    // A restart does not bring the bundled 2026 back over the operator's import.
    let app = app.restart().await;
    let listed = app.services.holiday_years().await.unwrap();
    assert_eq!(
        listed
            .iter()
            .find(|y| y.year == 2026)
            .map(|y| y.source.as_str()),
        Some("fix.csv")
    );
}

#[tokio::test]
async fn a_table_with_problems_changes_nothing() {
    let app = TestApp::spawn().await;
    let before = app.count("holidays").await;
    let e = app
        .services
        .import_holidays(
            "date,kind,name\n2027-02-06,holiday,春节\n2027-02-30,holiday,春节\n",
            "bad.csv",
        )
        .await
        .unwrap_err();
    assert_eq!(e.code.as_str(), "validation_failed");
    assert!(
        e.details.unwrap()["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("line 3")
    );
    assert_eq!(app.count("holidays").await, before);
    assert_eq!(app.count("holiday_years").await, 7);
}

#[tokio::test]
async fn a_missing_year_is_reported_before_it_is_needed() {
    let app = TestApp::spawn().await;
    // 1 March 2026: 2026 is covered, 2027 not needed yet.
    assert!(
        app.services
            .check_calendar_coverage()
            .await
            .unwrap()
            .is_empty()
    );
    // From November, next year is needed.
    app.clock.advance(Duration::days(250));
    assert_eq!(
        app.services.check_calendar_coverage().await.unwrap(),
        [2027]
    );
    app.services
        .import_holidays(Y2027, "y2027.csv")
        .await
        .unwrap();
    assert!(
        app.services
            .check_calendar_coverage()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn working_day_deadlines_follow_the_table_and_an_import_reaches_the_next_filing() {
    let app = TestApp::spawn().await;
    // Sunday 20 December 2026; 15 working days run into 2027, which is not covered yet:
    // counted with weekends only (1 January is a Friday) and reported.
    app.clock.advance(Duration::days(294));
    let before = app
        .file("complaint", rightsdesk_tests::valid_details("complaint"))
        .await;
    assert_eq!(before["due_date"], "2027-01-08");
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rightsdesk_calendar_fallbacks_total"),
        "{metrics}"
    );

    let y2027 = "date,kind,name\n2027-01-01,holiday,元旦\n2027-02-08,holiday,春节\n";
    app.services
        .import_holidays(y2027, "y2027.csv")
        .await
        .unwrap();
    let after = app
        .file("complaint", rightsdesk_tests::valid_details("complaint"))
        .await;
    assert_eq!(after["due_date"], "2027-01-11", "New Year's Day is off now");
    // A deadline once set never moves with the table.
    let (_, officer) = app.officer("officer", &["officer"]).await;
    let d = app
        .get(
            &format!(
                "/api/v1/officer/requests/{}",
                before["id"].as_str().unwrap()
            ),
            Some(&officer),
        )
        .await;
    assert_eq!(d.body["deadline"]["due_date"], "2027-01-08");
}
