"""Regenerate the poster font: a subset of Noto Sans CJK SC Bold (SIL OFL 1.1).

    apt-get install fonts-noto-cjk && python -m tools.poster_font

Posters draw campaign texts and masked names (a surname and stars), so the subset holds ASCII,
the punctuation and currency signs offers use, CJK and full-width punctuation, the 3,755 common
hanzi of GB2312 level 1 (Python's own gb2312 codec lists them, so no data file is needed) and
the surnames of the Hundred Family Surnames that level 1 lacks. Output, committed:
chalicelib/share/fonts/NotoSansSC-Bold-subset.otf and coverage.txt (every character the
subset maps, which the poster reads to replace what it cannot draw). fontTools is a dev
dependency only; the service never imports it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")
SOURCE_FACE = "Noto Sans CJK SC Bold"
OUT = Path(__file__).resolve().parent.parent / "chalicelib" / "share" / "fonts"
FONT_FILE = "NotoSansSC-Bold-subset.otf"

# 百家姓 and common modern surnames (single and compound). Level 1 has most; the rest are added.
SURNAMES = (
    "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜戚谢邹喻柏水窦章云苏潘葛奚范彭郎"
    "鲁韦昌马苗凤花方俞任袁柳酆鲍史唐费廉岑薛雷贺倪汤滕殷罗毕郝邬安常乐于时傅皮卞齐康伍余元卜顾孟平"
    "黄和穆萧尹姚邵湛汪祁毛禹狄米贝明臧计伏成戴谈宋茅庞熊纪舒屈项祝董梁杜阮蓝闵席季麻强贾路娄危江童"
    "颜郭梅盛林刁钟徐邱骆高夏蔡田樊胡凌霍虞万支柯昝管卢莫经房裘缪干解应宗丁宣贲邓郁单杭洪包诸左石崔"
    "吉钮龚程嵇邢滑裴陆荣翁荀羊於惠甄曲家封芮羿储靳汲邴糜松井段富巫乌焦巴弓牧隗山谷车侯宓蓬全郗班仰"
    "秋仲伊宫宁仇栾暴甘钭厉戎祖武符刘景詹束龙叶幸司韶郜黎蓟薄印宿白怀蒲邰从鄂索咸籍赖卓蔺屠蒙池乔阴"
    "胥能苍双闻莘党翟谭贡劳逄姬申扶堵冉宰郦雍却璩桑桂濮牛寿通边扈燕冀郏浦尚农温别庄晏柴瞿阎充慕连茹"
    "习宦艾鱼容向古易慎戈廖庾终暨居衡步都耿满弘匡国文寇广禄阙东欧殳沃利蔚越夔隆师巩厍聂晁勾敖融冷訾"
    "辛阚那简饶空曾毋沙乜养鞠须丰巢关蒯相查后荆红游竺权逯盖益桓公晋楚闫法汝鄢涂钦岳帅缑亢况郈有琴商"
    "牟佘佴伯赏墨哈谯笪年爱阳佟第五言福仉督颛壤驷拓跋夹宰父冼覃邸栗亓禤谌庹"
)
PUNCTUATION = "¥￥·—–‘’“”…×÷°%‰€£$□★☆●○◆※→←"


def gb2312_level1() -> str:
    """The 3,755 hanzi of GB2312 rows 16–55 (bytes B0A1–D7F9), the common set since 1980."""
    chars = []
    for high in range(0xB0, 0xD8):
        for low in range(0xA1, 0xFF):
            try:
                chars.append(bytes((high, low)).decode("gb2312"))
            except UnicodeDecodeError:
                pass  # D7FA–D7FE are unassigned
    return "".join(chars)


def wanted() -> str:
    ranges = [range(0x20, 0x7F), range(0x3000, 0x3040), range(0xFF01, 0xFF5F)]
    text = "".join(chr(c) for r in ranges for c in r)
    return "".join(dict.fromkeys(text + PUNCTUATION + gb2312_level1() + SURNAMES))


def build(source: Path, out: Path) -> tuple[Path, int]:
    from fontTools import subset
    from fontTools.ttLib import TTCollection

    faces = [face for face in TTCollection(str(source)).fonts if face["name"].getDebugName(4) == SOURCE_FACE]
    if not faces:
        raise SystemExit(f"{source} has no face named {SOURCE_FACE!r}")
    font = faces[0]
    options = subset.Options()
    options.layout_features = []  # CJK and Latin set without shaping; kerning is not worth the bytes
    options.name_IDs = ["*"]  # keep the copyright, licence and trademark notices
    options.hinting = False  # drawn large on a 750 px poster: hints buy nothing
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=wanted())
    subsetter.subset(font)
    out.mkdir(parents=True, exist_ok=True)
    target = out / FONT_FILE
    font.recalcTimestamp = False  # the same input makes the same file: no churn in git
    font.save(str(target))
    covered = sorted(chr(code) for code in font.getBestCmap())
    (out / "coverage.txt").write_text("".join(covered), encoding="utf-8")
    return target, len(covered)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.poster_font", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="Noto Sans CJK Bold (.ttc), from fonts-noto-cjk")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    target, count = build(args.source, args.out)
    print(f"{target}: {target.stat().st_size:,} bytes, {count:,} characters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
