"""
The numeric replies chatd's IRC front end sends, and the ISUPPORT (005) it
advertises.  ISUPPORT tells the truth about the core's rules: the values come
from L{chatd.core.names}, the one place that knows them.
"""

from chatd.core.names import NICK_MAX, ROOM_MAX

RPL_WELCOME = "001"
RPL_YOURHOST = "002"
RPL_CREATED = "003"
RPL_MYINFO = "004"
RPL_ISUPPORT = "005"
RPL_UMODEIS = "221"
RPL_AWAY = "301"
RPL_UNAWAY = "305"
RPL_NOWAWAY = "306"
RPL_WHOISREGNICK = "307"
RPL_WHOISUSER = "311"
RPL_WHOISSERVER = "312"
RPL_WHOISOPERATOR = "313"
RPL_ENDOFWHO = "315"
RPL_WHOISIDLE = "317"
RPL_ENDOFWHOIS = "318"
RPL_WHOISCHANNELS = "319"
RPL_LISTSTART = "321"
RPL_LIST = "322"
RPL_LISTEND = "323"
RPL_CHANNELMODEIS = "324"
RPL_CREATIONTIME = "329"
RPL_WHOISACCOUNT = "330"
RPL_NOTOPIC = "331"
RPL_TOPIC = "332"
RPL_TOPICWHOTIME = "333"
RPL_WHOREPLY = "352"
RPL_WHOSPCRPL = "354"
RPL_NAMREPLY = "353"
RPL_ENDOFNAMES = "366"
RPL_BANLIST = "367"
RPL_ENDOFBANLIST = "368"
RPL_MOTD = "372"
RPL_MOTDSTART = "375"
RPL_ENDOFMOTD = "376"
RPL_WHOISHOST = "378"
RPL_YOUREOPER = "381"
RPL_TIME = "391"
RPL_QUIETLIST = "728"
RPL_ENDOFQUIETLIST = "729"
ERR_UNKNOWNERROR = "400"
ERR_NOSUCHNICK = "401"
ERR_NOSUCHSERVER = "402"
ERR_NOSUCHCHANNEL = "403"
ERR_CANNOTSENDTOCHAN = "404"
ERR_TOOMANYCHANNELS = "405"
ERR_TOOMANYTARGETS = "407"
ERR_NORECIPIENT = "411"
ERR_NOTEXTTOSEND = "412"
ERR_INPUTTOOLONG = "417"
ERR_UNKNOWNCOMMAND = "421"
ERR_NOMOTD = "422"
ERR_NONICKNAMEGIVEN = "431"
ERR_ERRONEUSNICKNAME = "432"
ERR_NICKNAMEINUSE = "433"
ERR_USERNOTINCHANNEL = "441"
ERR_NOTONCHANNEL = "442"
ERR_NOTREGISTERED = "451"
ERR_NEEDMOREPARAMS = "461"
ERR_ALREADYREGISTERED = "462"
ERR_PASSWDMISMATCH = "464"
ERR_YOUREBANNEDCREEP = "465"
ERR_CHANNELISFULL = "471"
ERR_UNKNOWNMODE = "472"
ERR_BANNEDFROMCHAN = "474"
ERR_NOOPERHOST = "491"
ERR_CHANOPRIVSNEEDED = "482"
ERR_UMODEUNKNOWNFLAG = "501"
ERR_USERSDONTMATCH = "502"
RPL_LOGGEDIN = "900"
RPL_LOGGEDOUT = "901"
RPL_SASLSUCCESS = "903"
ERR_SASLFAIL = "904"
ERR_SASLTOOLONG = "905"
ERR_SASLABORTED = "906"
ERR_SASLALREADY = "907"
RPL_SASLMECHS = "908"

TOPICLEN = 390
AWAYLEN = 200
KICKLEN = 255
# Channel modes, in ISUPPORT's four groups: lists (ban, quiet), then modes
# that always take a parameter, then modes that take one only when set, then
# flags.  chatd has bans and mutes and nothing else.
CHANMODES = "bq,,,"
# Moderators (operators, the room's owner, its creator while there) show as @.
PREFIX = "(o)@"
# The most targets one PRIVMSG, NOTICE or KICK acts on (TARGMAX): each costs
# a line against flood pacing all the same, so that a list of targets sends
# no more than as many lines would.
MESSAGE_TARGETS = 4
KICK_TARGETS = 4
# The most lines one CHATHISTORY request gets.
CHATHISTORY_MAX = 100


def isupport(network: str, history: bool = False, maxRooms: int = 20) -> list[str]:
    """
    The ISUPPORT tokens, in the order sent; C{history}: the server keeps
    history, which CHATHISTORY reads; C{maxRooms}: the most channels one
    user may be in.
    """
    return [
        "CASEMAPPING=ascii",
        "CHANTYPES=#",
        f"CHANNELLEN={ROOM_MAX + 1}",
        f"NICKLEN={NICK_MAX}",
        f"TOPICLEN={TOPICLEN}",
        f"AWAYLEN={AWAYLEN}",
        f"KICKLEN={KICKLEN}",
        f"PREFIX={PREFIX}",
        f"CHANMODES={CHANMODES}",
        f"CHANLIMIT=#:{maxRooms}",
        "MAXLIST=bq:100",
        "MODES=1",
        f"NETWORK={network}",
        "UTF8ONLY",
        "WHOX",
        "ELIST=MNU",
        # JOIN and PART take any number of channels, each paced as a line.
        f"TARGMAX=JOIN:,PART:,NAMES:,LIST:,KICK:{KICK_TARGETS},PRIVMSG:{MESSAGE_TARGETS},"
        f"NOTICE:{MESSAGE_TARGETS},WHOIS:1",
        "SAFELIST",
    ] + ([f"CHATHISTORY={CHATHISTORY_MAX}", "MSGREFTYPES=msgid,timestamp"] if history else [])
