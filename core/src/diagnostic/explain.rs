//! `nudge explain CODE`: one page per diagnostic code, as `rustc --explain` does.
//!
//! Each page says what the code means, shows a minimal example that triggers it
//! (the very file `tests/check/err/CODE.nudge`, so the example is tested), and says
//! how to fix it.

use crate::diagnostic::Code;

macro_rules! pages {
    ($( $variant:ident $file:literal => $meaning:literal, $fix:literal; )*) => {
        fn page_parts(code: Code) -> (&'static str, &'static str, &'static str) {
            match code {
                $( Code::$variant => ($meaning, include_str!(concat!("../../../tests/check/err/", $file, ".nudge")), $fix), )*
            }
        }
    };
}

/// What a code means and how to fix it, without the example (SARIF rules'
/// `fullDescription` and `help`).
pub fn meaning_and_fix(code: Code) -> (&'static str, &'static str) {
    let (meaning, _, fix) = page_parts(code);
    (meaning, fix)
}

/// The explanation page of a code, as Markdown-flavoured text.
pub fn explain(code: Code) -> String {
    let (meaning, example, fix) = page_parts(code);
    let severity = code.default_severity().as_str();
    format!(
        "{code}: {summary} ({severity})\n\n{meaning}\n\nExample\n\n```nudge\n{example}```\n\nFix\n\n{fix}\n",
        summary = code.summary(),
        example = if example.ends_with('\n') {
            example.to_string()
        } else {
            format!("{example}\n")
        },
    )
}

pages! {
    UnexpectedToken "S001" => "The parser met something the grammar does not allow at that place. The message says what it expected instead, in words.",
        "Write what the message expects at the marked place. A misspelt keyword gets a `did you mean` hint.";
    UnterminatedString "S002" => "A string opened with `\"` is not closed before the end of its line. Strings do not span lines.",
        "Close the string on the same line. Write a line break inside a string as `\\n`.";
    InvalidEscape "S003" => "A backslash in a string starts an escape sequence; only `\\\"`, `\\\\`, `\\n`, `\\t` and `\\u{HEX}` exist.",
        "Use one of the escapes, or write a backslash as `\\\\`.";
    InvalidDuration "S004" => "Durations are an integer followed by a unit, `s`, `m`, `h`, `d` or `w`, written together and concatenable (`1h30m`). Spelled-out units (`min`, `days`) and a space between number and unit are not durations.",
        "Write the number and the unit together: `30m`, `2d`, `1h30m`.";
    InvalidTimeOfDay "S005" => "Times of day are 24-hour `HH:MM`, from `00:00` to `23:59`, with two digits each.",
        "Write a valid time such as `09:00` or `21:30`; midnight is `00:00`.";
    InvalidPercent "S006" => "Split arms take whole percentages from 0% to 100%.",
        "Use whole percentages; the arms of a split add up to 100%.";
    InvalidNumber "S007" => "A number is out of range where it is used: a priority is a whole number from 0 to 100, a cap counts whole sends.",
        "Use a whole number in the allowed range.";
    InvalidTimestamp "S008" => "A timestamp literal is not a valid RFC 3339 date and time (a month 13, February 30, a missing zone).",
        "Write a valid RFC 3339 timestamp with a zone, e.g. `2026-11-29T10:00:00Z`.";
    KeywordAsName "S009" => "Reserved words (`when`, `send`, `in`, `event` …) cannot name declarations (events, channels, journeys, templates, segments, topics) or split arms. Attributes, properties and template fields may have any name, keywords included (`priority: string`), since input streams name their fields; and any word may follow a dot, so `event.from` is fine.",
        "Choose another name.";
    AssignInsteadOfEquals "S010" => "`=` only names a segment (`segment s = …`) or gives a default; comparisons use `==`.",
        "Write `==` to compare two values.";
    MissingComma "S011" => "Items of a list (channels after `via`, list literals, call arguments) are separated by commas; attributes, properties and template fields by commas or line breaks.",
        "Add the missing comma, or put each item on its own line where that is allowed.";
    UnknownType "S012" => "A type is one of `number`, `string`, `bool`, `time`, `duration`, `timezone` and `list<number>` or `list<string>`, optionally followed by `?`.",
        "Use one of the types; the help names the likely one (`int` → `number`).";
    MisplacedClause "S013" => "A journey's header clauses (`owner`, `when`, `reenter` …) come before its steps and not inside blocks; a channel gives each of `address`, `consent` and `quiet` once.",
        "Move the clause to the top of the journey, or remove the repeated clause.";
    InterpolationOutsideTemplate "S014" => "`{{ … }}` interpolates values into template fields only; owners, event names and string values in conditions are plain text.",
        "Write plain text, or move the dynamic text into a template.";
    ChainedComparison "S015" => "Comparisons do not chain: `1 < x < 5` would compare a `bool` with a number.",
        "Compare twice and join with `and`: `1 < x and x < 5`.";
    TooDeep "S016" => "Brackets nest at most 64 deep and one declaration holds at most 1000 operators, so that checking and running stay fast and safe.",
        "Split the condition into named segments.";
    InvalidSchedule "S017" => "A scheduled trigger runs `every day at HH:MM`, on listed weekdays (`every mon, thu at 09:00`, days written `mon` … `sun`), or once `at YYYY-MM-DD HH:MM`, in each profile's own time zone. A day name that is not one of these, or a date that does not exist (`2026-02-30`), cannot be scheduled.",
        "Write `day`, three-letter weekdays separated by commas, or a date that exists.";
    UnknownEvent "N101" => "A journey, an `exit on` clause or an aggregate names an event that is not declared. Events are referred to by their declared name, not their `from` name.",
        "Use the declared name (the help suggests a close one), or declare the event.";
    UnknownProperty "N102" => "`event.NAME`, `trigger.NAME` or `sum(E.NAME …)` names a property the event does not declare.",
        "Use a declared property, or add it to the event's declaration.";
    UnknownAttribute "N103" => "`profile.NAME` names an attribute the `profile` block does not declare.",
        "Use a declared attribute, or add it to the `profile` block.";
    UnknownChannel "N104" => "A send, a cap or a template block names a channel that is not declared.",
        "Use a declared channel, or declare it with `channel NAME { address … consent … }`.";
    UnknownTemplate "N105" => "A `send` names a template that is not declared.",
        "Use a declared template, or declare it.";
    UnknownTopic "N106" => "A channel or a `require consent` clause names a consent topic that is not declared.",
        "Use a declared topic, or declare it with `consent NAME opt_in` or `opt_out`.";
    UnknownName "N107" => "A bare name in an expression refers to a segment, and no segment has this name. Attributes are read as `profile.NAME` and event properties as `event.NAME`.",
        "Declare the segment, or write the path you meant.";
    UnknownFunction "N108" => "The functions are `count`, `sum`, `since`, `lower`, `len`, `starts_with`, `contains`, `local_hour`, `weekday` and `local_time`.",
        "Call one of them.";
    DuplicateDeclaration "N110" => "Names are unique per kind across all files of a policy set, and a set has at most one `profile` and one `limits` block. Two events may not read the same incoming event name either.",
        "Rename or remove one of the two declarations (both places are shown).";
    DuplicateMember "N111" => "A name inside a declaration is given twice: an attribute, a property, a template field or channel block, a split arm, or a channel in one `via` list.",
        "Remove or rename the second one.";
    UnknownCategory "N112" => "A journey's `category` or a cap's `on category` names a category that is not declared. Categories are declared on their own line (`category promotions`) so that a misspelling cannot create a category no cap limits.",
        "Use a declared category (the help suggests the closest), or declare it: `category NAME`.";
    UnknownJourney "N113" => "An `expect` in a test names a journey (`journey: cart_recovery`) that is not declared, so it could never match a decision.",
        "Name a declared journey (the help suggests the closest), without quotes.";
    UnknownTestName "N114" => "An `expect` in a test names something decisions never have: a kind that is not one of `entered`, `send`, `deferred`, `suppressed`, `holdout`, `exited`, `completed`, `converted` and `not_entered`; a field that decisions of that kind lack (an `entered` has no `channel`); a `content` field no block of the template has; a split arm the journey does not have; or a reason that is not one of §7.4's. Such an expectation could never hold, and `expect no …` would always hold.",
        "Use the names the help lists; the fields of each kind are those of LANGUAGE.md §8.";
    TypeMismatch "T201" => "A value has the wrong type for where it is used: a string compared with a number, a number where a condition needs a `bool`, arithmetic on strings.",
        "Use a value of the expected type; the message names both types.";
    UnguardedOptional "T202" => "No silent nulls: a value that may be missing (`T?`) may only be compared with `none` or defaulted with `??`. Nudge never guesses what a missing value means.",
        "Write `value ?? default`, or test `value != none` first.";
    TriggerOutsideSteps "T203" => "`trigger.` is the event that started a journey instance. It exists only in the journey's steps and in the templates it sends; a `when … where` tests the incoming event, `event.`.",
        "In `when … where` and `exit on … where`, use `event.`; move tests of the trigger into an `if` step.";
    EventOutsideCondition "T204" => "`event.` is the event under test in `when … where`, `exit on … where` and aggregate filters. Steps run later, when that event is gone.",
        "In steps and templates, use `trigger.` for the event that started the journey.";
    BadCall "T205" => "A function is called with the wrong number or kind of arguments; aggregates need an event and `count`/`sum` need a window (`within 7d`).",
        "Follow the usage in the help, e.g. `count(EVENT where COND within 7d)`.";
    BadInterpolation "T206" => "Only strings and numbers can be interpolated into template text.",
        "Interpolate a string or number; choose between texts with an `if` step and two templates.";
    DivisionByZero "T207" => "A constant is divided by the constant zero. (When the divisor is only known at run time, division by zero yields 0 and a warning counter.)",
        "Divide by a non-zero value.";
    InvalidDefault "T208" => "A profile attribute's default is a constant of the attribute's type: a literal, not a path or an aggregate, and not `none`.",
        "Give a literal of the right type, or make the attribute optional without a default.";
    UnknownTimeZone "T209" => "Time zones are IANA names such as `Europe/Paris` or `America/New_York`, as in the tz database.",
        "Use an IANA zone name; the help suggests a close one.";
    FilterNotEventOnly "T210" => "An aggregate's `where` is decided once, when the event arrives, so it may use only `event.` properties and literals: not the profile, `now`, segments or other aggregates.",
        "Move the other conditions outside the aggregate.";
    TriggerPropertyNotShared "T211" => "A journey triggered by several events (`when cart_abandoned, checkout_started`) reads `event.P` in its `where`, or `trigger.P` in its steps and templates, for a property that is not declared with one type on every listed event: for some trigger it would have no value, or a value of another type.",
        "Declare the property with the same type on every listed event, or give the events that differ a journey of their own.";
    TestNotLiteral "T212" => "A test feeds values as they would arrive in an event stream: literals (`50`, `\"shoes\"`, `true`, `2026-11-29T10:00:00Z`, `30m`, `09:00`, lists of literals, `none`), not expressions. Expectations name journeys, templates, channels, events, arms and reasons without quotes.",
        "Write the value itself: `cart_value: 50`, not `cart_value: 25 * 2`.";
    TestMissingProperty "T213" => "An event in a test lacks a property that its declaration does not mark optional. In a real stream such an event is a dead letter and nothing runs, which is rarely what a test means to show.",
        "Give every required property, or declare the property optional (`coupon: string?`).";
    MissingWhen "P301" => "Every journey has exactly one `when` clause naming the event that starts it.",
        "Add `when EVENT` to the journey's header.";
    MissingOwner "P302" => "Every journey names its responsible team with `owner \"…\"`, so someone is accountable for what it sends.",
        "Add `owner \"team-name\"` to the journey's header.";
    RepeatedClause "P303" => "`when`, `owner`, `priority`, `reenter` and `transactional` appear at most once per journey, and `limits` has at most one `quiet` window. (`exit on` and `require consent` may repeat.)",
        "Keep one of the two clauses.";
    SendWithoutConsent "P304" => "A channel without a `consent` topic is transactional: only journeys marked `transactional` (receipts, password resets) may use it.",
        "Mark the journey `transactional`, or give the channel a consent topic.";
    SplitNotHundred "P305" => "The arms of a `split` share every profile between them, so their percentages add up to exactly 100%.",
        "Adjust the percentages, or add a holdout arm (`10% holdout`) for the rest.";
    ZeroCap "P306" => "A cap of 0 forbids every send, and a window of `0s` (in a cap, a journey's `cap`, an aggregate, an inactivity trigger `when no … for` or a `goal … within`) contains nothing.",
        "Allow at least one send, over a window of at least one second.";
    RequiredWithoutDefault "P307" => "A profile seen for the first time starts with the declared defaults, so an attribute without a default must be optional (`T?`).",
        "Add `?` to the type, or give a default.";
    BadChannelAddress "P308" => "A channel's `address` is a string attribute of the profile (the email, phone number or device token); every channel needs one.",
        "Write `address profile.ATTRIBUTE` with a string attribute.";
    SegmentCycle "P309" => "A segment that refers to itself, directly or through other segments, has no meaning.",
        "Break the cycle by writing one of the conditions out in full.";
    BadTimezoneAttribute "P310" => "The attribute named `timezone` is the profile's time zone, used for quiet hours, calendar caps and `wait until`; it must have type `timezone`.",
        "Declare `timezone: timezone = \"UTC\"`, or rename the attribute.";
    InvalidPointer "P311" => "A `from` that starts with `/` is a JSON Pointer (RFC 6901) into the whole input message, such as `\"/context/locale\"`. In a pointer, `~` starts an escape and must be followed by `0` (for `~`) or `1` (for `/`).",
        "Escape the name's `~` as `~0` and a `/` inside a name as `~1`, or, for a member of `properties` or `traits` with an unusual name, write the name itself without a leading `/`.";
    SharedInputField "P312" => "Each input field is read by one declaration: two properties of one event, or two attributes, that read the same member (by name or `from`), or two consent topics that answer to the same input name, would disagree about what the field means. An attribute cannot read `traits.consent`, which holds consent.",
        "Give one of the declarations a `from` naming another field, or remove it.";
    SendNeverPossible "P313" => "A `send` whose template has a content block for none of the channels in its `via` list can never send: every channel would be `no_content`, every time.",
        "Send via a channel the template has content for, or add a block for one of the channels to the template.";
    SensitiveOnPublicChannel "P315" => "An attribute marked `sensitive` (`ssn_last4: string? sensitive`) holds data only its owner should see. A channel marked `private` delivers content that only the recipient sees, after opening it (an email, an in-app inbox); any other channel may show it to whoever looks: a push notification or an SMS appears on a lock screen. Interpolating a sensitive attribute into a template block for a channel that is not private could put it in front of anyone. Nudge also never writes sensitive values outside decisions' `content`: dead letters show `***` in their place, and `why` and `--explain` name the attribute, never its value.",
        "Move the interpolation into the template's block for a private channel, and leave it out of the others; if the channel's content really is seen only by the recipient after opening it, mark the channel `private`.";
    TestOutOfOrder "P314" => "A test's steps run in time order: `at TIME` moves the clock forward and fires the timers due by then. A step earlier than the one before it would move the clock back, and the first step has no earlier time for `+DURATION` to count from.",
        "Start the test with a timestamp (`at 2026-11-29T09:00:00Z …`) and keep later steps at or after the previous one (`at +1h`).";
    MissingChannelBlock "L401" => "A `send` lists a channel for which its template has no content block; that channel can never be chosen (reason `no_content`).",
        "Add a block for the channel to the template, or remove the channel from `via`.";
    StepAfterStop "L402" => "Steps after `stop` in the same block never run.",
        "Remove them, or move the `stop`.";
    SmsTooLong "L403" => "One SMS holds 160 GSM-7 characters, or 70 when the text has characters outside the GSM-7 alphabet; longer texts are split and billed as several messages. Only the literal text is counted.",
        "Shorten the text.";
    UnusedSegment "L404" => "A segment is declared and never referred to.",
        "Use it, or remove it.";
    UnusedTemplate "L405" => "A template is declared and never sent by any journey.",
        "Send it from a journey, or remove it.";
    WaitAfterLastSend "L406" => "A `wait` that no `send` follows only keeps the instance active longer (which blocks re-entry), without delaying any message.",
        "Remove the wait.";
    ConstantCondition "L407" => "A condition does not depend on the profile, the event or the clock, so it is always true or always false.",
        "Remove the condition, or test a value that changes.";
    NeverMissing "L408" => "`?? default` or a `none` test is applied to a value that is never missing: the default is never used and the test always has the same result.",
        "Remove the `??` or the test.";
    TransactionalNeverLimited "L409" => "A `transactional` journey skips caps and quiet hours, and its sends are counted by no cap (a receipt never uses up a marketing message's place). A `cap` clause or a `category` on such a journey therefore limits nothing.",
        "Remove the clause, or, if the journey is marketing, remove `transactional` and give its channels consent topics.";
    UnusedCategory "L410" => "A category is declared but no journey has it, so caps `on category` it limit nothing and no `sent` event carries it.",
        "Give the journeys of that kind `category NAME`, or remove the declaration.";
    BestOfWithoutEngagement "L411" => "`send … via best of` gives the message to the available channel the profile engages with most: the score is (engagements + 1) / (sends + 2) over 90 days. A channel without an `engagement` clause has no engagements to count, so its score only falls as it is used.",
        "Add `engagement EVENT, …` to the channel: the events that show the profile opened, clicked or tapped a message on it.";
    UnboundedSends "L412" => "Nudge proves, from the caps alone, the most messages a profile can receive from marketing journeys in any 7 days (`nudge check --bounds`). A cap covers a journey's sends on a channel when it is a cap of `limits` without `on`, a cap `on` a list that names the channel, a cap `on category K` when the journey is of category `K`, or the journey's own `cap`. Sends that no cap covers could reach a customer without limit, so the channel's bound, and the bound over all channels, is none.",
        "Add a cap that covers them: `cap 3 per week` in `limits` covers every channel, `cap 1 per day on push` one channel, `cap 2 per week on category promotions` the journeys of a category, and `cap 1 per 7d` inside the journey its own sends.";
}
