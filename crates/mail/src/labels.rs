//! Words that notices put in front of people: request kinds and refusal reasons, in
//! Chinese and English (the API keeps the stable codes).

use crate::templates::language_of;

/// The name of a request kind (`access`, `deletion`, …) in `language`.
pub fn kind(code: &str, language: &str) -> String {
    let zh = language_of(language) == "zh-CN";
    let (zh_label, en_label) = match code {
        "access" => ("查阅个人信息", "access to your personal information"),
        "copy" => ("复制个人信息", "a copy of your personal information"),
        "portability" => ("转移个人信息", "transfer of your personal information"),
        "correction" => (
            "更正、补充个人信息",
            "correction of your personal information",
        ),
        "consent_withdrawal" => ("撤回同意", "withdrawal of consent"),
        "deletion" => ("删除个人信息", "deletion of your personal information"),
        "account_closure" => ("注销账户", "closing your account"),
        "next_of_kin" => (
            "近亲属行使已故用户的权利",
            "a next of kin's request for a deceased user",
        ),
        "explanation" => (
            "解释说明个人信息处理规则",
            "an explanation of how we process personal information",
        ),
        "complaint" => ("投诉", "a complaint"),
        other => return other.to_owned(),
    };
    if zh { zh_label } else { en_label }.to_owned()
}

/// The reason for a refusal (SPEC §8) in `language`.
pub fn reason(code: &str, language: &str) -> String {
    let zh = language_of(language) == "zh-CN";
    let (zh_label, en_label) = match code {
        "identity_not_verified" => ("无法核验您的身份", "we could not verify your identity"),
        "manifestly_unfounded" => (
            "请求明显缺乏依据或因重复而过度",
            "the request is manifestly unfounded or excessive by repetition",
        ),
        "disproportionate_effort" => (
            "需要付出不成比例的技术手段",
            "it would need disproportionate technical means",
        ),
        "harms_others" => (
            "将损害他人的合法权益",
            "it would harm the lawful rights and interests of others",
        ),
        "impractical" => (
            "客观上无法实现",
            "it is impractical (for example, data only on backups)",
        ),
        "legal_exemption" => (
            "法律、行政法规规定的例外情形（如国家安全、公共安全、刑事侦查）",
            "a legal exemption applies (national security, public safety, criminal investigation)",
        ),
        "deceased_arrangement" => (
            "已故用户生前另有安排",
            "the deceased user's own arrangement forbids it",
        ),
        "outside_jurisdiction" => (
            "不属于本服务的处理范围",
            "it is outside the scope of this service",
        ),
        other => return other.to_owned(),
    };
    if zh { zh_label } else { en_label }.to_owned()
}

/// The rule a refusal for reason `code` rests on, in `language`, as the refusal letter
/// cites it.
pub fn reason_basis(code: &str, language: &str) -> String {
    let zh = language_of(language) == "zh-CN";
    let (zh_label, en_label) = match code {
        "identity_not_verified" => (
            "《个人信息保护法》第五十条；GB/T 35273-2020《信息安全技术 个人信息安全规范》第8.7条（在验证个人信息主体身份后响应请求）",
            "PIPL art. 50; GB/T 35273-2020 (Personal information security specification) §8.7 (requests are answered once the requester's identity is verified)",
        ),
        "manifestly_unfounded" | "disproportionate_effort" | "harms_others" | "impractical" => (
            "GB/T 35273-2020《信息安全技术 个人信息安全规范》第8.7条（对无端重复、需要过多技术手段、给他人合法权益带来风险或者不切实际的请求，可以拒绝）",
            "GB/T 35273-2020 (Personal information security specification) §8.7 (requests that are groundlessly repeated, need excessive technical means, put others' lawful rights at risk or are impractical may be refused)",
        ),
        "legal_exemption" => (
            "《个人信息保护法》第四十四条（法律、行政法规另有规定的除外）；GB/T 35273-2020 第8.7条（与国家安全、公共安全、刑事侦查等直接相关的情形）",
            "PIPL art. 44 (save as laws and administrative regulations provide otherwise); GB/T 35273-2020 §8.7 (matters directly related to national security, public safety, criminal investigation and the like)",
        ),
        "deceased_arrangement" => (
            "《个人信息保护法》第四十九条（死者生前另有安排的除外）",
            "PIPL art. 49 (unless the deceased arranged otherwise before their death)",
        ),
        "outside_jurisdiction" => (
            "《个人信息保护法》第三条、第四十四条至第五十条（本服务受理的个人信息权利请求的范围）",
            "PIPL arts. 3 and 44–50 (the personal information rights this service handles)",
        ),
        other => return other.to_owned(),
    };
    if zh { zh_label } else { en_label }.to_owned()
}

/// The name of an evidence kind (`death_certificate`, …) in `language`.
pub fn evidence_kind(code: &str, language: &str) -> String {
    let zh = language_of(language) == "zh-CN";
    let (zh_label, en_label) = match code {
        "id_document" => ("身份证件", "identity document"),
        "death_certificate" => ("死亡证明", "death certificate"),
        "relationship_proof" => ("亲属关系证明", "proof of relationship"),
        "power_of_attorney" => ("授权委托书", "power of attorney"),
        "guardian_proof" => ("监护关系证明", "proof of guardianship"),
        "other" => ("其他材料", "other document"),
        other => return other.to_owned(),
    };
    if zh { zh_label } else { en_label }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_language_and_keep_unknown_codes() {
        assert_eq!(kind("deletion", "zh-CN"), "删除个人信息");
        assert_eq!(
            kind("deletion", "en"),
            "deletion of your personal information"
        );
        assert_eq!(kind("something_new", "en"), "something_new");
        assert_eq!(reason("harms_others", "zh"), "将损害他人的合法权益");
        assert_eq!(evidence_kind("death_certificate", "zh-CN"), "死亡证明");
    }
}
