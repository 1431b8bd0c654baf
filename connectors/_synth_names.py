"""Hand-written name and place tables for :mod:`connectors.synth` (synthetic data only).

The tables are deliberately small (a few hundred names) and cover the communities of a UK city:
White British and Irish, South Asian (Pakistani, Indian, Bangladeshi), Black African and Caribbean,
Polish, Romanian and other Eastern European, Arabic and Somali, and Chinese. Spellings include
accents (Zoë, Łukasz, Siobhán) on purpose; the corruption tables at the bottom (nicknames,
transliteration variants, accent pairs, similar twin names) drive record-level noise.
"""

from __future__ import annotations

from typing import NamedTuple


class NameGroup(NamedTuple):
    """Given names by sex and family names for one community."""

    male: tuple[str, ...]
    female: tuple[str, ...]
    family: tuple[str, ...]


def _t(text: str) -> tuple[str, ...]:
    return tuple(text.split())


WHITE_BRITISH_IRISH = NameGroup(
    male=_t(
        "James John William Robert Michael David Richard Thomas Christopher Daniel Matthew "
        "Anthony Andrew Joseph Edward Stephen Jonathan Benjamin Nicholas Patrick Alexander "
        "Samuel Jack Oliver Harry George Charlie Jacob Noah Leo Oscar Liam Connor Callum Dylan "
        "Rhys Gareth Owain Dafydd Ieuan Sean Seán Ciarán Declan Eoin Kieran Lewis Ryan Jordan "
        "Kyle Jamie Luke Adam Mark Paul Craig Lee Dean Wayne Gary Kevin Peter Ian Neil Carl "
        "Jayden Aiden Mason Harvey Tyler Noel Ronan Aled Gethin Rhodri Shane"
    ),
    female=_t(
        "Elizabeth Margaret Katherine Rebecca Samantha Jennifer Victoria Deborah Susan Sarah "
        "Emma Laura Rachel Hannah Jessica Sophie Charlotte Emily Olivia Amelia Isla Ava Mia "
        "Grace Lily Ella Chloe Chloë Zoe Zoë Megan Bethan Cerys Ffion Catrin Seren Niamh Aoife "
        "Siobhan Siobhán Ciara Róisín Kelly Nicola Lisa Donna Claire Gemma Stacey Leanne Kirsty "
        "Jade Amy Natalie Louise Michelle Karen Julie Tracey Joanne Amber Poppy Evie Freya "
        "Isabella Lucy Holly Caitlin Renee Renée"
    ),
    family=_t(
        "Smith Jones Williams Davies Evans Thomas Roberts Lewis Hughes Morgan Griffiths Edwards "
        "Price Jenkins Phillips James Rees Owen Harris Taylor Brown Wilson Johnson Walker Wright "
        "Robinson Thompson White Green Hall Wood Clarke Jackson Turner Hill Moore Cooper Ward "
        "Morris King Watkins Powell Baker Lloyd Parry Bevan Pritchard Murphy Kelly O'Brien "
        "O'Sullivan Walsh Byrne Ryan O'Connor McCarthy Doyle Gallagher Kennedy Sullivan "
        "Fitzgerald Hopkins Rowlands Bowen Howells Mathias Llewellyn"
    ),
)

PAKISTANI = NameGroup(
    male=_t(
        "Mohammed Muhammad Mohamed Ahmed Ali Hassan Hussain Imran Usman Bilal Zain Hamza Omar "
        "Umar Tariq Asif Kamran Adeel Faisal Shahid Yusuf Ibrahim Abdullah Amir Naveed Sajid "
        "Zubair Waqar Rizwan Arslan"
    ),
    female=_t(
        "Fatima Aisha Ayesha Maryam Zainab Sana Amna Hira Iqra Mehwish Nadia Saima Rabia "
        "Samina Shazia Yasmin Khadija Noor Anam Sidra Bushra Farah Asma Zara Alisha"
    ),
    family=_t(
        "Khan Ahmed Hussain Ali Iqbal Akhtar Shah Butt Malik Mahmood Raja Qureshi Rashid Aslam "
        "Javed Bibi Mirza Chaudhry Anwar Siddiqui Bashir Latif Nawaz Sheikh"
    ),
)

INDIAN = NameGroup(
    male=_t(
        "Rahul Amit Vikram Arjun Rohan Sanjay Rajesh Sunil Anil Deepak Harpreet Gurpreet "
        "Jaspreet Manpreet Ravi Nikhil Aarav Vivek Karan Sandeep Pradeep Ajay Vijay Kiran"
    ),
    female=_t(
        "Priya Anjali Pooja Neha Kavita Sunita Deepa Meena Simran Harjeet Manjit Jasleen "
        "Aarti Divya Shreya Ananya Nisha Rekha Geeta Lakshmi Sonia Kiran"
    ),
    family=_t(
        "Patel Singh Kaur Sharma Gupta Kumar Shah Mistry Desai Joshi Mehta Gill Sandhu Dhillon "
        "Sidhu Bains Chauhan Parmar Verma Nair Reddy Iyer"
    ),
)

BANGLADESHI = NameGroup(
    male=_t(
        "Mohammed Abdul Shahidul Rafiq Habib Jamal Kamal Monir Anwar Sohel Rubel Shahin Mizanur "
        "Abdur Ruhul Tanvir Sabbir Nazrul Faruk Arif"
    ),
    female=_t(
        "Fatema Nasima Rokeya Shirin Rina Shapla Taslima Nazma Rehana Sultana Jahanara Hasina "
        "Shammi Tania Sumaiya Rumana Ruksana Salma"
    ),
    family=_t(
        "Miah Begum Uddin Rahman Islam Ahmed Hossain Choudhury Chowdhury Ali Khatun Sarker "
        "Mollah Karim Haque Alam"
    ),
)

BLACK_AFRICAN_CARIBBEAN = NameGroup(
    male=_t(
        "Kwame Kofi Kwabena Chinedu Emeka Oluwaseun Tunde Femi Adebayo Chukwuemeka Obinna "
        "Tendai Tinashe Blessing Marcus Jermaine Delroy Winston Leon Tyrone Andre Curtis Darnell "
        "Kayode Ifeanyi Jerome Nathaniel Joshua Elijah Isaiah"
    ),
    female=_t(
        "Abena Ama Akosua Chiamaka Ngozi Adaeze Funmilayo Folake Yetunde Oluwakemi Precious "
        "Chipo Rutendo Shanice Tanisha Keisha Aaliyah Chantelle Marcia Beverley Janelle Imani "
        "Nia Esther Grace Blessing Favour"
    ),
    family=_t(
        "Mensah Owusu Boateng Asante Okafor Okonkwo Adeyemi Adebayo Okoro Eze Nwosu Oyelaran "
        "Moyo Ncube Banda Campbell Brown Williams Clarke Francis Thompson Bailey Grant Samuels "
        "Henry Daley Gordon Forbes"
    ),
)

POLISH = NameGroup(
    male=_t(
        "Łukasz Piotr Tomasz Krzysztof Paweł Michał Jakub Mateusz Marcin Grzegorz Aleksander "
        "Wojciech Kamil Szymon Adam Marek Dariusz Rafał Bartosz Oliwer"
    ),
    female=_t(
        "Katarzyna Agnieszka Małgorzata Anna Magdalena Joanna Aleksandra Monika Ewa Natalia "
        "Karolina Zofia Oliwia Dorota Justyna Marta Barbara Beata"
    ),
    # Adjectival surnames are stored in the masculine form; women get -ska / -cka.
    family=_t(
        "Nowak Kowalski Wiśniewski Wójcik Kowalczyk Kamiński Lewandowski Zieliński Szymański "
        "Woźniak Dąbrowski Kozłowski Jankowski Mazur Krawczyk Wróbel Piotrowski Grabowski "
        "Zając Pawlak Michalski Nowicki Kaczmarek"
    ),
)

OTHER_EASTERN_EUROPEAN = NameGroup(
    male=_t(
        "Andrei Mihai Ionuț Ion Florin Bogdan Vasile Cristian Adrian Oleksandr Dmytro Andriy "
        "Sergei Dmitri Nikolai Jānis Tomáš Martin Vladimir Darius"
    ),
    female=_t(
        "Ioana Maria Elena Andreea Mihaela Alexandra Irina Olena Oksana Tetiana Svetlana Ilona "
        "Kristýna Lucie Daria Simona"
    ),
    family=_t(
        "Popescu Ionescu Popa Dumitru Stan Stoica Gheorghe Constantin Rusu Kovalenko Shevchenko "
        "Bondarenko Ivanov Petrov Novák Dvořák Horváth Kazlauskas Balogh Marin"
    ),
)

ARABIC_SOMALI = NameGroup(
    male=_t(
        "Mohamed Mohamud Abdirahman Abdullahi Abdi Ahmed Ali Hassan Hussein Ibrahim Ismail "
        "Omar Osman Yusuf Yousef Mustafa Khalid Tariq Samir Karim Walid Faisal Mahmoud Hamza "
        "Abdulkadir Said Farah Jama Nur Adan"
    ),
    female=_t(
        "Fatima Fadumo Hodan Hawa Amina Asha Ayan Hibo Khadra Maryan Nasra Sahra Sagal Ubah "
        "Layla Leila Noor Yasmin Salma Rania Huda Mariam Zahra Samira Amal Hana"
    ),
    family=_t(
        "Mohamed Mohamud Abdi Ali Ahmed Hassan Hussein Ibrahim Ismail Omar Osman Yusuf Farah "
        "Jama Warsame Aden Egal Abdullahi Haji Nur Said Saleh Mansour Al-Sayed Haddad "
        "Khalil Nasser Hamdan"
    ),
)

CHINESE = NameGroup(
    male=_t(
        "Wei Jun Hao Ming Lei Jian Yong Tao Qiang Bo Chen Jie Kai Yi Zhen Hong Feng Kevin "
        "Jason Michael Wing Ka-Ho Chi-Wai"
    ),
    female=_t(
        "Li Mei Xin Yan Ying Jing Hui Fang Na Lan Ling Xiu Yu Qing Hua Ting Jessica Amy Grace "
        "Wing Mei-Ling Siu-Man"
    ),
    family=_t(
        "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Lin Luo Cheung "
        "Chan Wong Lee Ng Leung Lam Ho Tang Yip"
    ),
)

# (group name, table, share of households). Shares are loosely those of a large UK city.
GROUPS: tuple[tuple[str, NameGroup, float], ...] = (
    ("white_british_irish", WHITE_BRITISH_IRISH, 0.66),
    ("pakistani", PAKISTANI, 0.05),
    ("indian", INDIAN, 0.04),
    ("bangladeshi", BANGLADESHI, 0.02),
    ("black_african_caribbean", BLACK_AFRICAN_CARIBBEAN, 0.06),
    ("polish", POLISH, 0.05),
    ("other_eastern_european", OTHER_EASTERN_EUROPEAN, 0.03),
    ("arabic_somali", ARABIC_SOMALI, 0.05),
    ("chinese", CHINESE, 0.04),
)

# Groups whose names are also written family-name first, so a swapped order is more common.
FAMILY_NAME_FIRST_GROUPS = frozenset({"chinese"})

# Nicknames and short forms used as record-level corruption of a given name.
NICKNAMES: dict[str, tuple[str, ...]] = {
    "William": ("Bill", "Will", "Billy", "Liam"),
    "Robert": ("Bob", "Rob", "Bobby", "Robbie"),
    "Elizabeth": ("Liz", "Beth", "Lizzie", "Betty"),
    "Margaret": ("Maggie", "Peggy", "Meg"),
    "James": ("Jim", "Jimmy", "Jamie"),
    "John": ("Jack", "Johnny"),
    "Michael": ("Mike", "Mick", "Micky"),
    "Richard": ("Rich", "Rick", "Richie", "Dick"),
    "Thomas": ("Tom", "Tommy"),
    "Christopher": ("Chris",),
    "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",),
    "Anthony": ("Tony", "Ant"),
    "Andrew": ("Andy", "Drew"),
    "Joseph": ("Joe", "Joey"),
    "Edward": ("Ed", "Eddie", "Ted"),
    "Stephen": ("Steve", "Stevie"),
    "Jonathan": ("Jon", "Jonny"),
    "Benjamin": ("Ben", "Benny"),
    "Nicholas": ("Nick", "Nicky"),
    "Patrick": ("Pat", "Paddy"),
    "Alexander": ("Alex", "Sandy", "Xander"),
    "Samuel": ("Sam", "Sammy"),
    "David": ("Dave", "Davey"),
    "Peter": ("Pete",),
    "Katherine": ("Kate", "Katie", "Kath"),
    "Rebecca": ("Becky", "Becca"),
    "Samantha": ("Sam", "Sammy"),
    "Jennifer": ("Jen", "Jenny"),
    "Victoria": ("Vicky", "Tori"),
    "Deborah": ("Debbie", "Deb"),
    "Susan": ("Sue", "Susie"),
    "Jessica": ("Jess",),
    "Charlotte": ("Charlie", "Lottie"),
    "Isabella": ("Bella", "Izzy"),
    "Nicola": ("Nicky",),
    "Natalie": ("Nat",),
    "Mohammed": ("Mo",),
    "Muhammad": ("Mo",),
    "Mohamed": ("Mo",),
    "Abdullah": ("Abdul",),
    "Abdirahman": ("Abdi",),
    "Ibrahim": ("Ibby",),
    "Katarzyna": ("Kasia",),
    "Małgorzata": ("Gosia",),
    "Aleksandra": ("Ola",),
    "Aleksander": ("Olek",),
    "Magdalena": ("Magda",),
    "Agnieszka": ("Aga",),
    "Krzysztof": ("Krzys",),
    "Oleksandr": ("Sasha",),
    "Alexandra": ("Alex", "Sasha"),
    "Chukwuemeka": ("Emeka",),
    "Oluwaseun": ("Seun",),
    "Oluwakemi": ("Kemi",),
    "Funmilayo": ("Funmi",),
}

# Spellings of the same name (transliteration or anglicisation); any member may replace another.
VARIANT_GROUPS: tuple[tuple[str, ...], ...] = (
    ("Mohammed", "Muhammad", "Mohamed", "Mohammad", "Muhammed"),
    ("Yusuf", "Yousef", "Yousuf", "Youssef"),
    ("Ahmed", "Ahmad"),
    ("Hussain", "Hussein", "Husain"),
    ("Hassan", "Hasan"),
    ("Omar", "Umar"),
    ("Ibrahim", "Ebrahim"),
    ("Abdullah", "Abdallah"),
    ("Abdirahman", "Abdurahman", "Abdulrahman"),
    ("Mustafa", "Mostafa"),
    ("Mohamud", "Mahamud", "Mohamoud"),
    ("Fatima", "Fatimah", "Fatma", "Fatema"),
    ("Aisha", "Ayesha", "Aysha"),
    ("Khadija", "Khadijah"),
    ("Yasmin", "Yasmine"),
    ("Maryam", "Mariam", "Maryan"),
    ("Layla", "Leila", "Laila"),
    ("Choudhury", "Chowdhury", "Choudhry", "Chaudhry"),
    ("Rahman", "Rehman"),
    ("Uddin", "Udin"),
    ("Miah", "Mia", "Meah"),
    ("Andriy", "Andrii", "Andrey"),
    ("Sergei", "Sergey", "Serhiy"),
    ("Dmitri", "Dmitry", "Dmytro"),
    ("Nikolai", "Nikolay"),
    ("Tetiana", "Tatiana", "Tatyana"),
    ("Oleksandr", "Aleksandr", "Olexandr"),
    ("Olena", "Elena"),
    ("Kovalenko", "Kovalenco"),
    ("Shevchenko", "Schevchenko"),
    ("Zhang", "Chang"),
    ("Chen", "Chan"),
    ("Wong", "Huang"),
    ("Oyelaran", "Oyeleran"),
)

# Anglicised forms a native name may be recorded under (one way: Thomas never becomes Tomasz).
ANGLICISED: dict[str, tuple[str, ...]] = {
    "Aleksander": ("Alexander", "Alex"),
    "Aleksandra": ("Alexandra",),
    "Jakub": ("Jacob", "Jake"),
    "Piotr": ("Peter",),
    "Tomasz": ("Thomas", "Tom"),
    "Paweł": ("Paul",),
    "Michał": ("Michael",),
    "Krzysztof": ("Christopher",),
    "Wojciech": ("Voytek",),
    "Oleksandr": ("Alexander", "Alex"),
    "Olena": ("Helen",),
    "Andriy": ("Andrew",),
    "Ionuț": ("John",),
    "Wei": ("William",),
    "Jun": ("June",),
    "Hao": ("Howard",),
}

# Plain <-> accented spellings, for adding an accent a record's source did not have.
ACCENTED: dict[str, str] = {
    "Zoe": "Zoë",
    "Chloe": "Chloë",
    "Jose": "José",
    "Sean": "Seán",
    "Siobhan": "Siobhán",
    "Ciaran": "Ciarán",
    "Roisin": "Róisín",
    "Renee": "Renée",
    "Noel": "Noël",
    "Lukasz": "Łukasz",
    "Michal": "Michał",
    "Pawel": "Paweł",
    "Malgorzata": "Małgorzata",
    "Wisniewski": "Wiśniewski",
    "Wozniak": "Woźniak",
    "Tomas": "Tomáš",
    "Janis": "Jānis",
    "Zielinski": "Zieliński",
    "Kaminski": "Kamiński",
    "Dabrowski": "Dąbrowski",
    "Kozlowski": "Kozłowski",
    "Szymanski": "Szymański",
    "Novak": "Novák",
    "Dvorak": "Dvořák",
    "Horvath": "Horváth",
    "Ionut": "Ionuț",
    "Kristyna": "Kristýna",
}

# Pairs of near-identical given names, for twins that are hard to tell apart.
SIMILAR_TWIN_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "M": (
        ("Jayden", "Jaden"),
        ("Aiden", "Ayden"),
        ("Jack", "Jake"),
        ("Harry", "Harvey"),
        ("Zain", "Zayn"),
        ("Hassan", "Hussain"),
        ("Mateusz", "Marcin"),
        ("Kofi", "Kojo"),
        ("Connor", "Conor"),
        ("Lewis", "Louis"),
    ),
    "F": (
        ("Lily", "Lilly"),
        ("Ella", "Ellie"),
        ("Amelia", "Amelie"),
        ("Aisha", "Ayesha"),
        ("Sophie", "Sophia"),
        ("Megan", "Meghan"),
        ("Mia", "Maia"),
        ("Hana", "Hanna"),
        ("Katie", "Kaitlyn"),
        ("Jasmine", "Yasmin"),
    ),
}

# Street names typical of a UK city (the synthesiser adds Faker streets to these).
STREETS: tuple[str, ...] = (
    "High Street",
    "Church Road",
    "Station Road",
    "Albany Road",
    "City Road",
    "Cowbridge Road East",
    "Cowbridge Road West",
    "Newport Road",
    "Clifton Street",
    "Richmond Road",
    "Crwys Road",
    "Whitchurch Road",
    "Cathedral Road",
    "Penarth Road",
    "Clare Road",
    "Tudor Street",
    "Splott Road",
    "Broadway",
    "Caerphilly Road",
    "North Road",
    "Heathwood Road",
    "Ely Road",
    "Grand Avenue",
    "Western Avenue",
    "Mill Road",
    "Park Place",
    "Queen Street",
    "Bute Street",
    "Windsor Road",
    "Victoria Road",
    "Bridge Street",
    "Holton Road",
    "Commercial Street",
    "Chepstow Road",
    "Caerleon Road",
    "Malpas Road",
    "Llandaff Road",
    "Ninian Park Road",
    "Rhiwbina Hill",
    "Pantbach Road",
)

# Suffixes for streets named after Faker surnames ("Thompson Close").
STREET_SUFFIXES: tuple[str, ...] = (
    "Road",
    "Street",
    "Avenue",
    "Close",
    "Lane",
    "Crescent",
    "Drive",
    "Way",
    "Gardens",
    "Terrace",
    "Place",
    "Court",
    "Grove",
    "Walk",
)

# Outward codes (postcode districts) of one city region, and a few from elsewhere for movers.
CITY_DISTRICTS: tuple[str, ...] = (
    "CF3",
    "CF5",
    "CF10",
    "CF11",
    "CF14",
    "CF15",
    "CF23",
    "CF24",
    "CF37",
    "CF38",
    "CF62",
    "CF63",
    "CF64",
    "CF71",
    "CF72",
    "CF83",
    "NP10",
    "NP19",
    "NP20",
)
OTHER_DISTRICTS: tuple[str, ...] = (
    "BS1",
    "BS5",
    "SA1",
    "SA6",
    "NP4",
    "B10",
    "M14",
    "LS6",
    "E17",
    "N15",
    "SW9",
    "L8",
    "G31",
)

# Landline area-code prefixes (11-digit numbers) of the same region.
LANDLINE_PREFIXES: tuple[str, ...] = ("02920", "02921", "02922", "01633", "01446", "01443")

EMAIL_DOMAINS: tuple[str, ...] = (
    "gmail.com",
    "hotmail.co.uk",
    "outlook.com",
    "yahoo.co.uk",
    "icloud.com",
    "btinternet.com",
    "live.co.uk",
)
