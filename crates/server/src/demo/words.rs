//! The word lists people, companies and their rows are made of.

pub(super) const SURNAMES: &[(&str, &str)] = &[
    ("王", "wang"),
    ("李", "li"),
    ("张", "zhang"),
    ("刘", "liu"),
    ("陈", "chen"),
    ("杨", "yang"),
    ("黄", "huang"),
    ("赵", "zhao"),
    ("吴", "wu"),
    ("周", "zhou"),
    ("徐", "xu"),
    ("孙", "sun"),
    ("马", "ma"),
    ("朱", "zhu"),
    ("胡", "hu"),
    ("郭", "guo"),
    ("何", "he"),
    ("高", "gao"),
    ("林", "lin"),
    ("罗", "luo"),
    ("郑", "zheng"),
    ("梁", "liang"),
    ("谢", "xie"),
    ("宋", "song"),
    ("唐", "tang"),
    ("许", "xu"),
    ("冯", "feng"),
    ("邓", "deng"),
    ("曹", "cao"),
    ("彭", "peng"),
    ("曾", "zeng"),
    ("萧", "xiao"),
    ("田", "tian"),
    ("董", "dong"),
    ("潘", "pan"),
    ("袁", "yuan"),
    ("蒋", "jiang"),
    ("蔡", "cai"),
    ("余", "yu"),
    ("杜", "du"),
];

pub(super) const GIVEN: &[(&str, &str)] = &[
    ("伟", "wei"),
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("丽", "li"),
    ("强", "qiang"),
    ("磊", "lei"),
    ("军", "jun"),
    ("洋", "yang"),
    ("勇", "yong"),
    ("艳", "yan"),
    ("杰", "jie"),
    ("娟", "juan"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("霞", "xia"),
    ("平", "ping"),
    ("刚", "gang"),
    ("浩", "hao"),
    ("宇", "yu"),
    ("欣", "xin"),
    ("婷", "ting"),
    ("博", "bo"),
    ("晨", "chen"),
    ("思", "si"),
    ("佳", "jia"),
    ("子", "zi"),
    ("轩", "xuan"),
    ("一", "yi"),
    ("诺", "nuo"),
    ("涵", "han"),
    ("雨", "yu"),
    ("泽", "ze"),
    ("文", "wen"),
    ("建", "jian"),
    ("华", "hua"),
    ("国", "guo"),
    ("志", "zhi"),
    ("海", "hai"),
    ("晓", "xiao"),
    ("梦", "meng"),
    ("琳", "lin"),
    ("鹏", "peng"),
    ("辉", "hui"),
];

/// (province, city, city in pinyin)
pub(super) const CITIES: &[(&str, &str, &str)] = &[
    ("北京", "北京", "beijing"),
    ("上海", "上海", "shanghai"),
    ("浙江", "杭州", "hangzhou"),
    ("广东", "深圳", "shenzhen"),
    ("广东", "广州", "guangzhou"),
    ("江苏", "南京", "nanjing"),
    ("江苏", "苏州", "suzhou"),
    ("四川", "成都", "chengdu"),
    ("湖北", "武汉", "wuhan"),
    ("陕西", "西安", "xian"),
    ("山东", "济南", "jinan"),
    ("福建", "厦门", "xiamen"),
];

pub(super) const BRANDS: &[(&str, &str)] = &[
    ("恒通", "hengtong"),
    ("华信", "huaxin"),
    ("锐云", "ruiyun"),
    ("博远", "boyuan"),
    ("天择", "tianze"),
    ("鼎新", "dingxin"),
    ("星河", "xinghe"),
    ("海纳", "haina"),
    ("九州", "jiuzhou"),
    ("启明", "qiming"),
    ("云帆", "yunfan"),
    ("金盾", "jindun"),
    ("长风", "changfeng"),
    ("宏图", "hongtu"),
    ("智联", "zhilian"),
    ("数安", "shuan"),
];

pub(super) const TRADES: &[(&str, &str)] = &[
    ("信息技术", "it"),
    ("数据科技", "data"),
    ("网络科技", "net"),
    ("软件", "soft"),
    ("电子科技", "tech"),
    ("系统集成", "si"),
];

pub(super) const PERSONAL_DOMAINS: &[&str] = &["example.net", "example.org", "mail.example.com"];

pub(super) const POSITIONS: &[&str] = &[
    "运维工程师",
    "运维工程师",
    "系统架构师",
    "IT 经理",
    "技术总监",
    "解决方案工程师",
    "售前工程师",
    "采购经理",
    "研发工程师",
    "CTO",
    "学生",
];

pub(super) const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "135", "136", "137", "139", "150", "151", "152", "155", "156",
    "157", "158", "159", "166", "176", "177", "180", "181", "186", "187", "188", "189", "191",
    "199",
];

pub(super) const IP_PREFIXES: &[&str] = &[
    "116.228", "180.168", "223.104", "112.64", "101.87", "58.247", "183.14", "222.66",
];

/// (user agent, device, operating system)
pub(super) const USER_AGENTS: &[(&str, &str, &str)] = &[
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
        "PC",
        "Windows 11",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        "Mac",
        "macOS 14",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47",
        "iPhone",
        "iOS 17",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; V2309A) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0 Mobile Safari/537.36",
        "Android 手机",
        "Android 14",
    ),
    (
        "Mozilla/5.0 (X11; Linux aarch64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/110.0 Safari/537.36 UOS",
        "PC",
        "统信 UOS 20",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0",
        "PC",
        "银河麒麟 V10",
    ),
];

pub(super) const PAGES: &[&str] = &[
    "/",
    "/product/zstack-cloud",
    "/product/zstack-cube",
    "/download",
    "/docs/zstack-cloud/installation",
    "/docs/zstack-cloud/release-notes",
    "/trial/apply",
    "/user/center",
    "/user/tickets",
    "/solutions/xinchuang",
    "/training/zcce",
    "/news",
];

pub(super) const REFERRERS: &[&str] = &[
    "https://www.baidu.com/",
    "https://cn.bing.com/",
    "https://www.zstack.io/news",
    "-",
    "-",
];

pub(super) const PRODUCTS: &[&str] = &[
    "ZStack Cloud",
    "ZStack Cloud",
    "ZStack Cube 超融合",
    "ZStack ZSphere 虚拟化",
    "ZStack Zaku 容器平台",
    "ZStack CMP 多云管理",
    "ZStack Edge 边缘云",
    "ZStack AIOS 智算平台",
];

pub(super) const DOCUMENTS: &[&str] = &[
    "安装部署指南",
    "用户手册",
    "产品白皮书",
    "技术白皮书",
    "兼容性列表",
    "开发者 API 参考",
    "升级指南",
    "最佳实践",
    "ISO 安装镜像",
];

pub(super) const VERSIONS: &[&str] = &["4.8", "5.0", "5.1", "5.2", "5.3"];

pub(super) const TRIAL_NEEDS: &[&str] = &[
    "替换现有 VMware 虚拟化平台",
    "建设私有云测试环境",
    "GPU 资源池化与调度",
    "容灾备份方案验证",
    "国产化（信创）环境适配",
    "开发测试环境自助服务",
];

pub(super) type Survey = (
    &'static str,
    &'static [(&'static str, &'static [&'static str])],
);

pub(super) const SURVEYS: &[Survey] = &[
    (
        "2025 年私有云使用情况调研",
        &[
            (
                "贵单位目前使用的虚拟化平台是？",
                &["VMware", "ZStack", "OpenStack", "Hyper-V", "暂未使用"],
            ),
            (
                "云平台的物理服务器规模？",
                &["10 台以下", "10–50 台", "50–200 台", "200 台以上"],
            ),
            (
                "未来一年最关注的能力？",
                &["信创适配", "容灾备份", "GPU 智算", "运维自动化", "成本"],
            ),
        ],
    ),
    (
        "ZStack 产品满意度调研",
        &[
            (
                "您使用 ZStack 的时长？",
                &["半年以内", "1–2 年", "2 年以上"],
            ),
            (
                "您对产品稳定性的评价？",
                &["非常满意", "满意", "一般", "不满意"],
            ),
            (
                "您对技术支持响应速度的评价？",
                &["非常满意", "满意", "一般", "不满意"],
            ),
            (
                "您是否愿意向同行推荐 ZStack？",
                &["非常愿意", "愿意", "不确定", "不愿意"],
            ),
        ],
    ),
    (
        "AI 算力平台需求调研",
        &[
            (
                "贵单位的 GPU 规模？",
                &["暂无", "8 卡以下", "8–64 卡", "64 卡以上"],
            ),
            (
                "主要的 AI 场景？",
                &["大模型推理", "模型训练", "视觉识别", "暂无规划"],
            ),
            (
                "最希望解决的问题？",
                &["资源利用率低", "调度复杂", "国产 GPU 适配", "运维困难"],
            ),
        ],
    ),
];

pub(super) const INDUSTRIES: &[&str] = &[
    "金融",
    "制造",
    "教育",
    "医疗",
    "政府",
    "能源",
    "交通",
    "互联网",
    "运营商",
];

/// (kind, product)
pub(super) const PARTNER_PRODUCTS: &[(&str, &str)] = &[
    ("存储", "分布式存储系统"),
    ("服务器", "国产化服务器"),
    ("网络设备", "数据中心交换机"),
    ("数据库", "分布式数据库"),
    ("中间件", "消息中间件"),
    ("安全产品", "云安全网关"),
    ("操作系统", "服务器操作系统"),
];

pub(super) const ARCHITECTURES: &[&str] = &[
    "x86_64",
    "x86_64（海光）",
    "aarch64（鲲鹏）",
    "aarch64（飞腾）",
    "LoongArch64（龙芯）",
];

pub(super) const ROADS: &[&str] = &[
    "东川路",
    "科技路",
    "创新大道",
    "软件园路",
    "高新四路",
    "金科路",
];

pub(super) const CONSULTATION_TOPICS: &[(&str, &str)] = &[
    (
        "私有云平台规划",
        "计划新建 30 台规模的私有云，希望了解整体方案与报价",
    ),
    (
        "超融合替换方案",
        "现有超融合设备即将过保，想评估迁移到 ZStack Cube",
    ),
    ("信创云平台建设", "需要满足信创要求，咨询鲲鹏与海光混合部署"),
    ("容灾备份方案", "希望实现同城双活与异地备份"),
    ("混合云架构", "与公有云打通，统一管理"),
    (
        "GPU 智算平台规划",
        "计划采购 32 卡 GPU 服务器，咨询资源池化方案",
    ),
];

pub(super) const FEEDBACK: &[(&str, &str)] = &[
    ("意见反馈", "希望文档中心增加中文视频教程"),
    ("意见反馈", "官网下载速度较慢，希望提供国内镜像"),
    ("预约沟通", "想预约售前工程师沟通 VMware 迁移方案"),
    ("咨询问题", "请问是否支持 ARM 服务器混合部署？"),
    ("咨询问题", "产品试用期能否延长两周？"),
    ("意见反馈", "用户中心修改手机号的流程不太方便"),
];

pub(super) const CALL_SUMMARIES: &[&str] = &[
    "咨询产品价格",
    "询问工单处理进度",
    "咨询试用申请",
    "咨询认证培训报名",
    "反馈官网无法登录",
    "预约售前拜访",
];

/// (title, type, details)
pub(super) const TICKET_TOPICS: &[(&str, &str, &str)] = &[
    (
        "云主机无法启动",
        "故障",
        "重启物理机后部分云主机启动失败，报错 “no available host”",
    ),
    (
        "主存储连接中断",
        "故障",
        "Ceph 主存储状态显示为 Disconnected，业务云主机 IO 卡顿",
    ),
    (
        "升级后管理节点无法登录",
        "故障",
        "从 5.1 升级到 5.2 后 UI 打不开，提示 502",
    ),
    ("云主机热迁移失败", "故障", "跨集群热迁移到 99% 时失败"),
    (
        "镜像上传速度慢",
        "咨询",
        "上传 40 GB 镜像需要 3 小时，是否正常？",
    ),
    (
        "物理机离线告警",
        "故障",
        "凌晨收到物理机离线告警，十分钟后自动恢复",
    ),
    (
        "定时备份任务失败",
        "故障",
        "备份任务连续两天失败，日志见附件",
    ),
    ("许可证扩容", "需求", "需要新增 8 个 CPU 许可，请协助处理"),
];

pub(super) const CUSTOMER_MESSAGES: &[&str] = &[
    "问题描述如上，日志已打包上传，麻烦尽快看一下。",
    "按照建议操作后问题依旧，请远程协助。",
    "已恢复，感谢支持。",
    "今天下午 3 点方便远程，请联系我。",
];

pub(super) const SUPPORT_MESSAGES: &[&str] = &[
    "您好，已收到工单，工程师正在分析日志。",
    "请在管理节点执行 zstack-ctl status 并提供输出。",
    "问题原因是存储网络抖动，已给出调整建议，请确认。",
    "补丁已发布，请按附件步骤升级后观察。",
];

pub(super) const END_CUSTOMERS: &[(&str, &str)] = &[
    ("市人民医院", "医疗"),
    ("城市商业银行", "金融"),
    ("职业技术学院", "教育"),
    ("供电公司", "能源"),
    ("轨道交通集团", "交通"),
    ("市大数据局", "政府"),
    ("汽车零部件有限公司", "制造"),
];

pub(super) const PROJECTS: &[&str] = &[
    "私有云建设项目",
    "信创云平台项目",
    "超融合扩容项目",
    "灾备中心建设项目",
    "智算平台一期项目",
];

pub(super) const FOLLOWUPS: &[&str] = &[
    "已完成首次拜访，客户关注信创适配",
    "已提交技术方案，等待客户评审",
    "客户安排 POC 测试，预计两周",
    "投标文件已提交",
    "等待客户内部预算审批",
    "已确认中标，准备合同",
];

pub(super) const EVENTS: &[&str] = &[
    "ZStack 全国渠道巡展（{city}站）",
    "ZStack 技术开放日（{city}）",
    "信创云技术沙龙（{city}）",
    "ZStack 年度合作伙伴大会",
];

pub(super) const TRAINING_QUESTIONS: &[&str] = &[
    "ZCCE 考试的报名时间和费用？",
    "ZCCA 是否需要先通过 ZCCE？",
    "能否安排企业内训？",
    "线上课程是否有回放？",
];

pub(super) const SCHOOLS: &[&str] = &[
    "上海交通职业技术学院",
    "南京信息工程大学",
    "杭州电子科技大学",
    "成都理工大学",
    "武汉软件工程职业学院",
];

pub(super) const CAMPAIGNS: &[&str] = &[
    "ZStack Cloud 5.x 新版本发布",
    "信创云解决方案研讨会邀请",
    "年度用户大会邀请",
    "产品月刊",
    "AIOS 智算平台上线",
];

pub(super) const FORUM_TOPICS: &[(&str, &str)] = &[
    ("ZStack Cloud 5.2 升级注意事项", "upgrade-5.2-checklist.pdf"),
    ("Ceph 主存储最佳实践", "ceph-primary-storage.pdf"),
    ("GPU 透传配置指南", "gpu-passthrough.pdf"),
    ("常见网络问题排查", "network-troubleshooting.pdf"),
    ("VMware 迁移工具使用说明", "v2v-migration.pdf"),
];
