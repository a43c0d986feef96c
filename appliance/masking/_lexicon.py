"""Word lists the PII scanner is built from: context words, surnames, address markers, ...

Data, not logic: the scanner kernels (``ext/_scan.pyx`` and its twin ``_scan_py.py``) receive these
tuples once, when ``Analyzer.default()`` builds its ``Scanner``, and turn them into their own lookup
tables. Keeping them here (rather than in either kernel) gives both twins one source of truth and lets
a reviewer audit *why* a number was scored up or down without reading C.

Principles for editing the lists:

* Context words are matched case-insensitively for ASCII, in a window of 20 code points before and
  8 after a candidate (the window stops at sentence punctuation). The nearest word wins; at equal
  distance the longer one does, so "order id" (lowering) beats "id" (raising) and "订单号码" beats
  "号码". Add the longer phrase rather than deleting the short one.
* ASCII words only match as whole words (no ASCII letter on either side): "ref" does not match
  inside "prefer".
* Surnames are the common part of the Hundred Family Surnames (百家姓) by modern frequency, minus
  characters that are far more often function words than names (和, 来, 时, 那, 都, 明, ...):
  a surname alone never makes a PERSON, it still needs a context word or an honorific.
* Every character-level list holds characters of the Basic Multilingual Plane only.
"""

from __future__ import annotations

import re
from datetime import date

__all__ = [
    "ADDRESS_LEAD",
    "ADDRESS_MARKERS",
    "ADDRESS_STOPS",
    "CN_AREA_CODES",
    "COMPOUND_SURNAMES",
    "GIVEN_NAMES",
    "HONORIFICS",
    "IBAN_BBAN",
    "LOWERING",
    "MONTHS",
    "NAME_AFTER",
    "NAME_BEFORE",
    "NAME_BEFORE_WEAK",
    "NAME_STOPS",
    "NAME_SUFFIXES",
    "NAME_TITLES",
    "NONNAMES",
    "PHONE_REGIONS",
    "PLATE_PROVINCES",
    "RAISING",
    "STREET_SUFFIXES",
    "STREET_UNITS",
    "SURNAMES",
    "US_STATES",
    "iban_formats",
    "scanner_arguments",
]

_PHONE_WORDS = (
    "电话", "手机", "手机号", "手机号码", "联系电话", "联系方式", "致电", "来电", "回电", "联系号码",
    "电话号码", "移动电话", "打给", "拨打", "短信", "微信",
    "phone", "phone number", "phone no", "tel", "telephone", "mobile", "mobile number", "cell",
    "cellphone", "call", "call me", "contact", "contact number", "reach me", "whatsapp", "sms", "text me",
)  # fmt: skip

# Raising context, one tuple per entity type, in the order of ``_scan_py.TYPES``.
RAISING: dict[str, tuple[str, ...]] = {
    "CN_RESIDENT_ID": (
        "身份证", "身份证号", "身份证号码", "证件号", "证件号码", "居民身份证", "身份号码", "公民身份号码",
        "身分证", "证件", "id", "id card", "id number", "id no", "identity card", "national id",
        "resident id", "chinese id", "identity number",
    ),
    "CN_MOBILE": _PHONE_WORDS,
    "CN_LANDLINE": (
        *_PHONE_WORDS, "座机", "固话", "固定电话", "办公电话", "传真", "分机", "landline", "fax", "office",
    ),
    "CN_USCC": (
        "统一社会信用代码", "信用代码", "社会信用代码", "税号", "纳税人识别号", "营业执照", "执照", "uscc",
        "credit code", "social credit code", "tax id", "business license",
    ),
    "CN_PASSPORT": ("护照", "护照号", "护照号码", "passport", "passport no", "passport number"),
    "CN_PERMIT": (
        "通行证", "港澳通行证", "往来港澳通行证", "台湾通行证", "回乡证", "台胞证", "来往内地通行证",
        "通行证号", "通行证号码", "permit", "travel permit", "home return permit", "entry permit",
        "exit-entry permit", "mainland travel permit",
    ),
    "CN_PLATE": (
        "车牌", "车牌号", "牌照", "车号", "号牌", "车辆", "license plate", "plate", "plate number",
        "vehicle",
    ),
    "BANK_CARD": (
        "卡号", "银行卡", "银行卡号", "信用卡", "信用卡号", "借记卡", "储蓄卡", "银联", "银行账号", "账号",
        "帐号", "开户行", "工资卡", "card", "card number", "card no", "credit card", "debit card", "visa",
        "mastercard", "amex", "unionpay", "account number", "acct", "pan",
    ),
    "IBAN": (
        "iban", "国际银行账号", "银行账户", "账户", "bank account", "account", "account number", "acct",
        "swift", "bic", "汇款", "转账", "transfer",
    ),
    "US_SSN": (
        "ssn", "social security", "social security number", "ss#", "ss no", "社会安全号", "社会安全号码",
        "社安号",
    ),
    "US_ITIN": ("itin", "taxpayer", "individual taxpayer", "taxpayer id", "tin", "tax id", "纳税人识别号"),
    # "number" alone is a phone word (what else is "my number"); the "<thing> number" phrases of other
    # types ("account number", "passport number") and of LOWERING are longer and win where they occur.
    "PHONE": (*_PHONE_WORDS, "number", "numbers", "phones", "phone numbers", "mobile phone"),
    "EMAIL": ("email", "e-mail", "mail", "邮箱", "电子邮件", "邮件", "电邮"),
    "IP_ADDRESS": (
        "ip", "ip address", "ip地址", "ipv4", "ipv6", "server", "host", "服务器", "主机", "登录ip",
        "logged in from",
    ),
    "MAC_ADDRESS": (
        "mac", "mac address", "mac地址", "物理地址", "网卡", "device", "设备", "路由器", "router",
    ),
    "PASSPORT": (
        "passport", "passport no", "passport number", "护照", "护照号", "护照号码", "travel document",
        "pass no",
    ),
    "DATE_OF_BIRTH": (
        "出生", "出生日期", "生日", "出生于", "生于", "出生年月", "出生年月日", "dob", "d.o.b", "d.o.b.",
        "born", "born on", "birth", "birthday", "date of birth", "birth date", "birthdate",
    ),
    "PERSON": (),
    "ADDRESS": (
        "地址", "住址", "收货地址", "家庭住址", "通讯地址", "送货地址", "寄到", "送到", "住在", "位于",
        "address", "addr", "ship to", "deliver to", "mailing address", "live at", "lives at", "located at",
    ),
}  # fmt: skip

# Lowering context for every type: identifiers that are not about a person.
LOWERING: tuple[str, ...] = (
    "订单", "订单号", "订单号码", "订单编号", "单号", "运单", "运单号", "快递单号", "物流单号", "物流",
    "快递", "工单", "工单号", "流水号", "交易号", "交易单号", "编号", "票号", "发票", "发票号", "退款单号",
    "批次",
    "型号", "序列号", "版本", "版本号", "验证码", "金额", "价格", "积分", "会员号", "会员卡", "会员卡号",
    "积分卡", "购物卡", "礼品卡", "商品", "券码", "取件码", "单据", "合同号", "保单号", "航班",
    "发票号码", "发票代码", "运单号码", "工单号码", "快递单号码", "单号码", "票据号",
    "order", "order id", "order no", "order number", "order #", "ticket", "ticket no", "ticket number",
    "tracking", "tracking number", "tracking no", "invoice", "invoice no", "reference", "ref", "ref no",
    "transaction", "txn", "confirmation", "confirmation number", "booking", "reservation", "serial",
    "serial number", "sku", "model", "version", "case number", "case #", "case no", "shipment", "waybill",
    "parcel", "package", "coupon", "voucher", "promo code", "verification code", "otp", "amount", "total",
    "gift card", "flight", "policy number",
    # "<thing> number": longer than the phone word "number", so they win where they occur
    "reference number", "ref number", "booking number", "reservation number", "invoice number",
    "receipt number", "claim number", "member number", "membership number", "customer number",
    "model number", "part number", "item number", "product number", "flight number",
    "transaction number", "batch number", "lot number", "version number", "shipment number",
    "parcel number", "package number", "voucher number", "coupon number", "return number", "rma number",
    "quote number", "po number", "purchase order number",
)  # fmt: skip

SURNAMES: tuple[str, ...] = tuple(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖萧田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
    "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴"
    "莫孔汤温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童"
    "凌毕单季裴霍涂苗谷盛曲翁冉骆蓝游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳穆农司卓古吉缪简车项连芦麦"
    "褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂佟臧闵苟邬边卞姬师仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩佘池查"
    "麻苑迟邝官封谈匡鞠惠荆冀郁胥南班储栗燕楚鄢劳谌奚皮粟冼蔺闻厉伊仝郜阚权帅屠豆朴盖练廉禹井祖漆巴丰"
    "支卿狄计索宣晋芮扈晁阙浦戈伏鹿薄邸雍辜羊乌母裘亓修邰赫杭况宿鲜印逯隆茹诸战慕危银亢嵇湛宾戎勾茅"
    "揭尉冶斯束檀阴昝奉衡尧闭常向成时全"
)

COMPOUND_SURNAMES: tuple[str, ...] = (
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯",
    "轩辕", "令狐", "端木", "独孤", "南宫", "西门", "百里", "呼延", "万俟", "赫连", "澹台", "公冶", "宗政",
    "濮阳", "太叔", "申屠", "钟离", "闻人", "仲孙", "闾丘", "东郭", "公羊", "梁丘", "左丘", "第五", "谷梁",
    "拓跋", "完颜", "单于", "司空", "司寇", "鲜于", "亓官", "子车", "颛孙", "壤驷", "公良", "漆雕", "乐正",
    "巫马", "公西", "羊舌", "微生", "段干", "东门",
)  # fmt: skip

# A person's name follows these directly (after at most three of ":：  是为").
NAME_BEFORE: tuple[str, ...] = (
    "姓名", "名字", "名叫", "叫", "我叫", "本人", "客户", "联系人", "收件人", "收货人", "寄件人", "持卡人",
    "户名", "开户名", "开户人", "账户名", "患者", "乘客", "旅客", "申请人", "投保人", "被保险人", "法人",
    "法定代表人", "负责人", "经办人", "签收人", "业主", "租客", "家长", "姓名为",
    "my name is", "name is", "name:", "full name:", "mr", "mr.", "mrs", "mrs.", "ms", "ms.", "miss", "dr",
    "dr.", "prof.", "dear", "regards,", "sincerely,", "customer:", "contact:", "cardholder:", "signed,",
    "signed by", "passenger:", "called", "account holder", "account holder is", "holder is", "holder:",
    "account name", "account name:", "name on the card", "beneficiary", "beneficiary:", "recipient",
    "recipient:", "recipient is", "payee", "payee:", "attn", "attn:", "attention:", "c/o", "addressed to",
    "contact person", "名字是", "名字叫", "姓名是", "联系人是", "收件人是", "会员", "用户", "顾客", "车主",
    "卡主", "机主", "员工", "同事", "学员", "病人", "房东", "租户", "老板", "代理人", "监护人", "委托人",
    "被保人",
)  # fmt: skip

# A name right before these introduces itself: "Jodi Thompson here", "张伟这边".
NAME_AFTER: tuple[str, ...] = ("here", "speaking", "这边", "本人")

# Honorific titles that open an English name ("Dr. Jane Doe"): part of the name span.
NAME_TITLES: tuple[str, ...] = ("mr", "mrs", "ms", "miss", "mx", "dr", "prof")

# Generational and professional suffixes that close an English name ("John Smith Jr.", "Ann Lee MD").
NAME_SUFFIXES: tuple[str, ...] = (
    "jr",
    "sr",
    "ii",
    "iii",
    "iv",
    "v",
    "md",
    "dds",
    "phd",
    "dvm",
    "esq",
    "cpa",
    "rn",
)

# Common US given names (Social Security Administration top names of recent decades). A capitalised one
# followed by a capitalised surname is a name even without an introducing phrase, at a lower score.
GIVEN_NAMES: tuple[str, ...] = tuple(
    """
    james john robert michael william david richard joseph thomas charles christopher daniel matthew anthony
    mark donald steven paul andrew joshua kenneth kevin brian george timothy ronald edward jason jeffrey ryan
    jacob gary nicholas eric jonathan stephen larry justin scott brandon benjamin samuel gregory alexander
    frank patrick raymond jack dennis jerry tyler aaron jose adam nathan henry douglas zachary peter kyle
    ethan walter noah jeremy christian keith roger terry gerald harold sean austin carl arthur lawrence
    dylan jesse jordan bryan billy joe bruce gabriel logan albert willie alan juan wayne elijah randy roy
    vincent ralph eugene russell bobby mason philip louis luke travis shawn bradley dustin victor martin
    craig todd corey derek cody marcus curtis alex evan ian caleb hunter luis carlos antonio angel miguel
    mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty margaret sandra
    ashley kimberly emily donna michelle carol amanda dorothy melissa deborah stephanie rebecca sharon laura
    cynthia kathleen amy angela shirley anna brenda pamela emma nicole helen samantha katherine christine
    debra rachel carolyn janet catherine maria heather diane ruth julie olivia joyce virginia victoria kelly
    lauren christina joan evelyn judith megan andrea cheryl hannah jacqueline martha gloria teresa ann sara
    madison frances kathryn janice jean abigail alice judy sophia grace denise amber doris marilyn danielle
    beverly isabella theresa diana natalie brittany charlotte marie kayla alexis lori tiffany crystal tracy
    erin monica wendy courtney april kristen kristin tina holly vanessa erica caroline jenna gabrielle lindsay
    vicki ava mia chloe ella lily zoe leah allison rose taylor morgan jasmine tammy sabrina sylvia valerie
    johnny clifford ronnie jimmy tony leonard lee allen earl dale glenn jeffery herbert frederick clarence
    howard lloyd eddie bernard harry melvin leroy francis stanley franklin norman calvin darrell warren marvin
    rodney gordon dean jim jeff tom mike dan don ron ken tim greg chris matt nick steve andy danny ricky bill
    bob ted ray jay troy shane brett chad clayton colin connor cooper dalton damian darren devin dominic drew
    eli emmanuel eduardo fernando francisco gavin grant garrett hector isaac ivan jared javier jorge julian
    lance landon levi lucas manuel mario max micheal mitchell nathaniel neil oliver omar oscar parker preston
    rafael ricardo riley roberto ruben seth sergio spencer trevor tristan wesley xavier jimmie johnnie wade
    darryl clinton alfred glen joel leon lewis marc micah miles owen pedro phillip reginald ross sam shaun
    stuart terrance terrence tommy vernon wyatt brent brad brendan carter casey cesar charlie chase cole cory
    dakota darius derrick edwin elliot erik ernest felix gilbert gregg harvey herman jake jamie jerome jon
    karl kurt lonnie luther marshall maurice mathew morris nelson perry randall rick rickey roland rudy sidney
    tanner trent tyrone willard clyde floyd guy jeremiah josh
    jodi sheila whitney beth shannon caitlin jill joanne kathy katie kate kristy kristina krista leslie
        lindsey
    lynn mandy marissa melanie meredith misty molly natasha nina paige paula peggy penny rachael regina renee
    rhonda rita robin robyn rosa roxanne ruby sally sandy shelby sherri sherry stacy stacey sue suzanne
    tabitha tamara tanya tara toni tonya tracey traci veronica vickie wanda yolanda yvonne alicia alison
    alyssa amelia angelica angie annette audrey autumn bailey becky belinda bethany bonnie briana brianna
    bridget brooke caitlyn candace cara carla carmen carrie cassandra cathy charlene christy cindy claire
    claudia colleen connie cristina daisy dana darlene dawn deanna debbie destiny dominique eileen elaine
    elena ellen erika eva faith felicia gail gina haley hailey heidi hillary hope isabel jaclyn jade jane
    jenny jessie jillian joann jocelyn josephine joy julia juliana june kaitlyn kara karina kari katelyn
    katrina kay kendra kerry kim krystal lacey latoya lillian lucy lydia mackenzie mallory marcia marsha
    maureen maxine melinda mercedes michele miranda monique nichole norma olga patty pauline phyllis
    priscilla raven rebekah rosemary shawna sheri sierra sonia sonya summer tasha terri tracie trisha vera
    """.split()
)

# Weaker introductions: a name after these must end at punctuation, a space or an honorific.
NAME_BEFORE_WEAK: tuple[str, ...] = (
    "我是", "这里是", "this is", "i am", "i'm", "hi", "hello", "thanks,", "thank you,", "best,", "cheers,",
)  # fmt: skip

HONORIFICS: tuple[str, ...] = (
    "先生", "女士", "小姐", "经理", "老师", "医生", "主任", "律师", "教授", "博士", "同学", "阿姨", "叔叔",
    "师傅", "总监", "总经理", "董事长", "太太", "夫人", "大夫", "护士", "警官", "工程师", "主管", "部长",
    "处长", "科长", "局长", "院长", "校长", "书记",
)  # fmt: skip

# Characters that cannot be part of a given name (particles, pronouns, common verbs).
NAME_STOPS: tuple[str, ...] = tuple(
    "的了是在和与及或吗呢吧啊呀哦嗯我你他她它您们这那有没不也都就还要会能说请把给对从到被让向很已经着得地"
    "个些么什怎哪谁等问去做找帮发收寄送回电号码手机卡账户址证今后再又才只更最嘛呗哈"
)

# Capitalised English words that are not names even after "this is" / "Dear".
NONNAMES: tuple[str, ...] = (
    "the", "a", "an", "i", "it", "this", "that", "my", "your", "our", "we", "you", "he", "she", "they",
    "his", "her", "not", "please", "thanks", "thank", "hello", "hi", "sorry", "customer", "support", "team",
    "service", "sir", "madam", "here", "there", "all", "everyone", "calling", "just", "also", "from", "with",
    "regarding", "re", "order", "account", "and", "or", "but", "so", "yes", "no", "ok", "okay", "good",
    "great", "fine", "happy", "glad", "available", "interested", "writing", "looking", "trying", "going",
    "having", "still", "unable", "new", "agent", "manager", "bank", "card",
    "friend", "friends", "colleague", "sales", "billing", "help", "desk", "about", "again", "now", "today",
)  # fmt: skip

# Address markers by level: administrative, street (or compound), house.
ADDRESS_MARKERS: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = (
    (
        "省", "市", "区", "县", "自治区", "自治州", "自治县", "特别行政区", "盟", "旗", "镇", "乡", "街道",
        "开发区", "新区",
    ),
    (
        "路", "街", "道", "巷", "弄", "胡同", "大街", "大道", "村", "组", "社区", "小区", "花园", "苑",
        "大厦", "广场", "公寓", "园区",
    ),
    ("号", "号楼", "号院", "栋", "幢", "单元", "室", "楼", "层", "座", "户"),
)  # fmt: skip

# Characters that cannot be part of a place name: an address starts after the last of them. Function
# words that do occur in place names (和平区, 成都, 来宾, 会泽, 从化, 于都, 那曲, 经开区) are left out.
ADDRESS_STOPS: tuple[str, ...] = tuple(
    "我你他她它您们的了是在住到寄送发给请把及或往去吗呢吧啊呀哦嗯就也还要能说想帮这哪个些么什怎谁被让很已"
    "过着得址位改换电话手机问证码账卡"
)

# Verbs and labels that end right before an address: it starts after them ("收货地址改成北京市...").
ADDRESS_LEAD: tuple[str, ...] = (
    "改成", "改为", "换成", "寄到", "送到", "发到", "寄往", "送往", "发往", "位于", "住在", "搬到", "地址是",
    "地址为", "地址：", "地址:",
)  # fmt: skip

# USPS Publication 28, appendix C1: street suffixes and their standard abbreviations.
STREET_SUFFIXES: tuple[str, ...] = tuple(
    """
    alley aly anex anx arcade arc avenue ave bayou byu beach bch bend bnd bluff blf bluffs blfs bottom btm
    boulevard blvd branch br bridge brg brook brk brooks brks burg bg burgs bgs bypass byp camp cp canyon cyn
    cape cpe causeway cswy center ctr centers ctrs circle cir circles cirs cliff clf cliffs clfs club clb
    common cmn commons cmns corner cor corners cors course crse court ct courts cts cove cv coves cvs creek
    crk crescent cres crest crst crossing xing crossroad xrd crossroads xrds curve curv dale dl dam dm divide
    dv drive dr drives drs estate est estates ests expressway expy extension ext extensions exts fall falls
    fls ferry fry field fld fields flds flat flt flats flts ford frd fords frds forest frst forge frg forges
    frgs fork frk forks frks fort ft freeway fwy garden gdn gardens gdns gateway gtwy glen gln glens glns
    green grn greens grns grove grv groves grvs harbor hbr harbors hbrs haven hvn heights hts highway hwy
    hill hl hills hls hollow holw inlet inlt island is islands iss isle junction jct junctions jcts key ky
    keys kys knoll knl knolls knls lake lk lakes lks land landing lndg lane ln light lgt lights lgts loaf lf
    lock lck locks lcks lodge ldg loop mall manor mnr manors mnrs meadow mdw meadows mdws mews mill ml mills
    mls mission msn motorway mtwy mount mt mountain mtn mountains mtns neck nck orchard orch oval overpass
    opas park parks parkway pkwy parkways pass passage psge path pike pine pne pines pnes place pl plain pln
    plains plns plaza plz point pt points pts port prt ports prts prairie pr radial radl ramp ranch rnch
    rapid rpd rapids rpds rest rst ridge rdg ridges rdgs river riv road rd roads rds route rte row rue run
    shoal shl shoals shls shore shr shores shrs skyway skwy spring spg springs spgs spur spurs square sq
    squares sqs station sta stravenue stra stream strm street st streets sts summit smt terrace ter
    throughway trwy trace trce track trak trafficway trfy trail trl trailer trlr tunnel tunl turnpike tpke
    underpass upas union un unions uns valley vly valleys vlys viaduct via view vw views vws village vlg
    villages vlgs ville vl vista vis walk walks wall way wy ways well wl wells wls
    """.split()
)

STREET_UNITS: tuple[str, ...] = ("apt", "apartment", "suite", "ste", "unit", "room", "rm", "floor", "fl", "#")

US_STATES: tuple[str, ...] = tuple(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND "
    "OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR GU VI AS MP FM MH PW AA AE AP".split()
)

PLATE_PROVINCES: tuple[str, ...] = tuple("京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼")

MONTHS: tuple[str, ...] = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december",
)  # fmt: skip

# BBAN structure per country (SWIFT IBAN registry notation: n digits, a upper-case letters, c either),
# the registry's countries and then those using IBANs before registration, as schwifty ships them.
IBAN_BBAN: dict[str, str] = dict(
    item.split(":")
    for item in (
        "AD:4!n4!n12!c AE:3!n16!n AL:8!n16!c AT:5!n11!n AX:3!n11!n AZ:4!a20!c BA:3!n3!n8!n2!n BE:3!n7!n2!n "
        "BG:4!a4!n2!n8!c BH:4!a14!c BI:5!n5!n11!n2!n BL:5!n5!n11!c2!n BR:8!c5!n10!n1!c1!c BY:4!c4!n16!c "
        "CH:5!n12!c CR:4!n14!n CY:3!n5!n16!c CZ:4!n6!n10!n DE:8!n10!n DJ:23!n DK:4!n9!n1!n DO:4!c20!n "
        "EE:2!n2!n11!n1!n EG:4!n4!n17!n ES:4!n4!n1!n1!n10!n FI:3!n11!n FK:2!a12!n FO:4!n9!n1!n "
        "FR:5!n5!n11!c2!n GB:4!a6!n8!n GE:2!a16!n GF:5!n5!n11!c2!n GG:4!a6!n8!n GI:4!a15!c GL:4!n9!n1!n "
        "GP:5!n5!n11!c2!n GR:3!n4!n16!c GT:4!c20!c HN:4!a20!n HR:7!n10!n HU:3!n4!n1!n15!n1!n IE:4!a6!n8!n "
        "IL:3!n3!n13!n IM:4!a6!n8!n IQ:4!a3!n12!n IS:4!n2!n6!n10!n IT:1!a5!n5!n12!c JE:4!a6!n8!n "
        "JO:4!a4!n18!c KW:4!a22!c KZ:3!n13!c LB:4!n20!c LC:4!a24!c LI:5!n12!c LT:5!n11!n LU:3!n13!c "
        "LV:4!a13!c LY:3!n3!n15!n MC:5!n5!n11!c2!n MD:2!c18!c ME:3!n13!n2!n MF:5!n5!n11!c2!n MK:3!n10!c2!n "
        "MN:4!n12!n MQ:5!n5!n11!c2!n MR:5!n5!n11!n2!n MT:4!a5!n18!c MU:4!a2!n2!n12!n3!n3!a NC:5!n5!n11!c2!n "
        "NI:4!a20!n NL:4!a10!n NO:4!n6!n1!n OM:3!n16!c PF:5!n5!n11!c2!n PK:4!a16!c PL:8!n16!n "
        "PM:5!n5!n11!c2!n PS:4!a21!c PT:4!n4!n11!n2!n QA:4!a21!c RE:5!n5!n11!c2!n RO:4!a16!c RS:3!n13!n2!n "
        "RU:9!n5!n15!c SA:2!n18!c SC:4!a2!n2!n16!n3!a SD:2!n12!n SE:3!n16!n1!n SI:5!n8!n2!n SK:4!n6!n10!n "
        "SM:1!a5!n5!n12!c SO:4!n3!n12!n ST:4!n4!n11!n2!n SV:4!a20!n TF:5!n5!n11!c2!n TL:3!n14!n2!n "
        "TN:2!n3!n13!n2!n TR:5!n1!n16!c UA:6!n19!c VA:3!n15!n VG:4!a16!n WF:5!n5!n11!c2!n XK:4!n10!n2!n "
        "YE:4!a4!n18!c YT:5!n5!n11!c2!n "
        "AO:21!n BF:2!c22!n BJ:2!c22!n CF:23!n CG:23!n CI:2!a22!n CM:23!n CV:21!n DZ:22!n GA:23!n GQ:23!n "
        "GW:2!c19!n IR:22!n KM:23!n MA:24!n MG:23!n ML:2!c22!n MZ:21!n NE:2!a22!n SN:2!a22!n TD:23!n "
        "TG:2!a3!n5!n12!n2!n"
    ).split()
)

# Mainland area codes after the trunk 0: the two-digit ones (8-digit local numbers) and the three-digit
# ones (7 or 8) of libphonenumber's CN fixed-line metadata, without the 400/800 service prefixes.
CN_AREA_CODES: tuple[str, ...] = tuple(
    """
    10 20 21 22 23 24 25 27 28 29
    310 311 312 313 314 315 316 317 318 319 335 349 350 351 352 353 354 355 356 357 358 359 370 371 372 373
    374 375 376 377 379 391 392 393 394 395 396 398 411 412 415 416 417 418 419 421 427 429 431 432 433 434
    435 436 437 438 439 451 452 453 454 455 456 457 458 459 464 467 468 469 470 471 472 473 474 475 476 477
    478 479 482 483 510 511 512 513 514 515 516 517 518 519 523 527 530 531 532 533 534 535 536 537 538 539
    543 546 550 551 552 553 554 555 556 557 558 559 561 562 563 564 566 570 571 572 573 574 575 576 577 578
    579 580 591 592 593 594 595 596 597 598 599 631 632 633 635 660 662 663 668 691 692 701 710 711 712 713
    714 715 716 717 718 719 722 724 728 730 731 734 735 736 737 738 739 743 744 745 746 750 751 752 753 754
    755 756 757 758 759 760 762 763 766 768 769 770 771 772 773 774 775 776 777 778 779 790 791 792 793 794
    795 796 797 798 799 812 813 816 817 818 825 826 827 830 831 832 833 834 835 836 837 838 839 851 854 855
    856 857 858 859 870 871 872 873 874 875 876 877 878 879 883 886 887 888 891 892 893 894 895 896 897 898
    901 902 903 906 908 909 911 912 913 914 915 916 917 919 930 931 932 933 934 935 936 937 938 939 941 943
    950 951 952 953 954 955 970 971 972 973 974 975 976 977 978 979 990 991 992 993 994 995 996 997 998 999
    """.split()
)


# Regions whose national-format numbers ("09-7625400", "020 7946 0958": no "+", no "00") the analyzer
# accepts as PHONE, checked with libphonenumber. The kernel proposes such a number only where the nearest
# context word is a phone word; it is then reported if it is valid in one of these regions *as written*,
# trunk prefix included (a German reading of any 10 digits is too permissive otherwise). Mainland China
# and NANP numbers have their own rules and are not listed. Override per deployment with
# ``Analyzer(scanner, phone_regions=...)`` (ISO 3166 alpha-2 codes libphonenumber knows).
PHONE_REGIONS: tuple[str, ...] = ("GB", "DE", "FR", "IL", "IN", "SG", "HK", "AU", "JP")


def iban_formats() -> tuple[str, ...]:
    """Each country as its code followed by one class letter (n/a/c) per BBAN character."""
    out = []
    for country, spec in IBAN_BBAN.items():
        classes = "".join(kind * int(count) for count, kind in re.findall(r"(\d+)!([nac])", spec))
        out.append(country + classes)
    return tuple(out)


def scanner_arguments(types: tuple[str, ...], today: date | None = None) -> dict[str, object]:
    """The keyword arguments of ``Scanner(...)``, with the raising words ordered like ``types``.

    ``today`` bounds birth dates (a resident ID or date of birth in the future is no one's): the
    analyzer passes the date it is built on.
    """
    today = today or date.today()
    return {
        "raising": tuple(RAISING.get(t, ()) for t in types),
        "lowering": LOWERING,
        "surnames": SURNAMES,
        "compound_surnames": COMPOUND_SURNAMES,
        "name_before": NAME_BEFORE,
        "name_before_weak": NAME_BEFORE_WEAK,
        "honorifics": HONORIFICS,
        "name_stops": NAME_STOPS,
        "name_titles": NAME_TITLES,
        "name_after": NAME_AFTER,
        "name_suffixes": NAME_SUFFIXES,
        "given_names": GIVEN_NAMES,
        "nonnames": NONNAMES,
        "address_markers": ADDRESS_MARKERS,
        "address_stops": ADDRESS_STOPS,
        "address_lead": ADDRESS_LEAD,
        "street_suffixes": STREET_SUFFIXES,
        "street_units": STREET_UNITS,
        "us_states": US_STATES,
        "plate_provinces": PLATE_PROVINCES,
        "months": MONTHS,
        "iban_formats": iban_formats(),
        "cn_area_codes": CN_AREA_CODES,
        "today": today.year * 10000 + today.month * 100 + today.day,
    }
