"""Word-level lexicon translation of English training prompts into German, French, Spanish, Italian and Portuguese.

Used by scripts/train_runtime_injection.py only (training time, never shipped): the fast tier's n-grams and the
English MiniLM know attacks only in English, so multilingual recall was low (0.47 fast / 0.58 cascade). Training
prompts of *both* classes (S-Labs and neuralchemy train splits) are rewritten word by word with this hand-written
lexicon of common words (the vocabulary of instructions, rules, prompts and secrets, and everyday function words),
so the model learns "ignoriere … Anweisungen" as well as "ignore … instructions", and, because benign prompts are
translated the same way, not that a foreign language is suspicious. The output is crude (English word order, words
outside the lexicon left in English); it carries the lexical cues, which is what an n-gram model uses. The lexicon
was written from general knowledge of the languages, not from the multilingual evaluation file.
"""

from __future__ import annotations

import random
import re

LANGS = ("de", "fr", "es", "it", "pt")

# english: (de, fr, es, it, pt)
_RAW = """
ignore: ignoriere | ignore | ignora | ignora | ignora
ignoring: ignorierend | en ignorant | ignorando | ignorando | ignorando
forget: vergiss | oublie | olvida | dimentica | esquece
disregard: missachte | néglige | descarta | trascura | desconsidera
previous: vorherigen | précédentes | anteriores | precedenti | anteriores
prior: früheren | antérieures | previas | precedenti | prévias
earlier: früheren | antérieures | anteriores | precedenti | anteriores
above: obigen | ci-dessus | anteriores | sopra | acima
all: alle | toutes | todas | tutte | todas
instructions: Anweisungen | instructions | instrucciones | istruzioni | instruções
instruction: Anweisung | instruction | instrucción | istruzione | instrução
rules: Regeln | règles | reglas | regole | regras
rule: Regel | règle | regla | regola | regra
guidelines: Richtlinien | directives | directrices | linee guida | diretrizes
prompt: Prompt | invite | indicación | prompt | prompt
system: System | système | sistema | sistema | sistema
reveal: enthülle | révèle | revela | rivela | revela
show: zeige | montre | muestra | mostra | mostra
tell: sag | dis | di | dimmi | diz
print: gib aus | affiche | imprime | stampa | imprime
repeat: wiederhole | répète | repite | ripeti | repete
output: Ausgabe | sortie | salida | output | saída
write: schreibe | écris | escribe | scrivi | escreve
say: sag | dis | di | di' | diz
give: gib | donne | dame | dammi | dá
me: mir | moi | me | mi | me
my: meine | mes | mis | miei | minhas
you: du | tu | tú | tu | tu
your: deine | tes | tus | tue | tuas
are: bist | es | eres | sei | és
now: jetzt | maintenant | ahora | ora | agora
act: handle | agis | actúa | agisci | age
as: als | comme | como | come | como
pretend: tu so als ob | fais semblant | finge | fingi | finge
bypass: umgehe | contourne | evita | aggira | contorna
restrictions: Einschränkungen | restrictions | restricciones | restrizioni | restrições
limits: Grenzen | limites | límites | limiti | limites
limitations: Beschränkungen | limitations | limitaciones | limitazioni | limitações
filters: Filter | filtres | filtros | filtri | filtros
safety: Sicherheit | sécurité | seguridad | sicurezza | segurança
ethical: ethischen | éthiques | éticas | etiche | éticas
developer: Entwickler | développeur | desarrollador | sviluppatore | desenvolvedor
mode: Modus | mode | modo | modalità | modo
secret: geheime | secret | secreto | segreto | secreto
secrets: Geheimnisse | secrets | secretos | segreti | segredos
password: Passwort | mot de passe | contraseña | password | senha
confidential: vertrauliche | confidentielles | confidencial | riservate | confidencial
information: Informationen | informations | información | informazioni | informações
data: Daten | données | datos | dati | dados
original: ursprüngliche | originale | original | originale | original
initial: anfängliche | initiale | inicial | iniziale | inicial
hidden: versteckte | cachée | oculta | nascosta | oculta
training: Training | formation | entrenamiento | addestramento | treino
programming: Programmierung | programmation | programación | programmazione | programação
must: musst | dois | debes | devi | deves
should: solltest | devrais | deberías | dovresti | deverias
do: mach | fais | haz | fai | faz
not: nicht | pas | no | non | não
never: niemals | jamais | nunca | mai | nunca
always: immer | toujours | siempre | sempre | sempre
only: nur | seulement | solo | solo | apenas
follow: befolge | suis | sigue | segui | segue
obey: gehorche | obéis | obedece | obbedisci | obedece
answer: antworte | réponds | responde | rispondi | responde
respond: antworte | réponds | responde | rispondi | responde
question: Frage | question | pregunta | domanda | pergunta
questions: Fragen | questions | preguntas | domande | perguntas
the: die | les | las | le | as
a: ein | un | un | un | um
an: ein | un | un | un | um
and: und | et | y | e | e
or: oder | ou | o | o | ou
of: von | de | de | di | de
to: zu | à | a | a | a
in: in | dans | en | in | em
with: mit | avec | con | con | com
without: ohne | sans | sin | senza | sem
for: für | pour | para | per | para
is: ist | est | es | è | é
this: dies | ce | esto | questo | isto
that: das | cela | eso | quello | isso
what: was | quoi | qué | cosa | o que
how: wie | comment | cómo | come | como
why: warum | pourquoi | por qué | perché | porque
please: bitte | s'il te plaît | por favor | per favore | por favor
can: kannst | peux | puedes | puoi | podes
could: könntest | pourrais | podrías | potresti | poderias
help: hilf | aide | ayuda | aiuta | ajuda
explain: erkläre | explique | explica | spiega | explica
describe: beschreibe | décris | describe | descrivi | descreve
story: Geschichte | histoire | historia | storia | história
recipe: Rezept | recette | receta | ricetta | receita
poem: Gedicht | poème | poema | poesia | poema
list: Liste | liste | lista | elenco | lista
summarize: fasse zusammen | résume | resume | riassumi | resume
translate: übersetze | traduis | traduce | traduci | traduz
create: erstelle | crée | crea | crea | cria
make: mache | fais | haz | fai | faz
find: finde | trouve | encuentra | trova | encontra
best: beste | meilleur | mejor | migliore | melhor
good: gut | bon | bueno | buono | bom
new: neue | nouvelle | nueva | nuova | nova
time: Zeit | temps | tiempo | tempo | tempo
world: Welt | monde | mundo | mondo | mundo
people: Menschen | gens | personas | persone | pessoas
work: Arbeit | travail | trabajo | lavoro | trabalho
day: Tag | jour | día | giorno | dia
user: Benutzer | utilisateur | usuario | utente | utilizador
users: Benutzer | utilisateurs | usuarios | utenti | utilizadores
assistant: Assistent | assistant | asistente | assistente | assistente
model: Modell | modèle | modelo | modello | modelo
language: Sprache | langage | lenguaje | linguaggio | linguagem
task: Aufgabe | tâche | tarea | compito | tarefa
text: Text | texte | texto | testo | texto
following: folgenden | suivantes | siguientes | seguenti | seguintes
everything: alles | tout | todo | tutto | tudo
anything: irgendetwas | n'importe quoi | cualquier cosa | qualsiasi cosa | qualquer coisa
nothing: nichts | rien | nada | niente | nada
free: frei | libre | libre | libero | livre
unrestricted: uneingeschränkt | sans restriction | sin restricciones | senza restrizioni | sem restrições
override: überschreibe | outrepasse | anula | sovrascrivi | substitui
disable: deaktiviere | désactive | desactiva | disattiva | desativa
delete: lösche | supprime | elimina | elimina | apaga
access: Zugriff | accès | acceso | accesso | acesso
private: private | privées | privadas | private | privadas
personal: persönliche | personnelles | personales | personali | pessoais
share: teile | partage | comparte | condividi | partilha
send: sende | envoie | envía | invia | envia
here: hier | ici | aquí | qui | aqui
who: wer | qui | quién | chi | quem
where: wo | où | dónde | dove | onde
when: wann | quand | cuándo | quando | quando
which: welche | quelle | cuál | quale | qual
about: über | sur | sobre | su | sobre
it: es | le | lo | lo | o
be: sein | être | ser | essere | ser
have: habe | avoir | tener | avere | ter
will: wirst | vas | vas a | farai | vais
any: jede | toute | cualquier | qualsiasi | qualquer
no: kein | aucune | ninguna | nessuna | nenhuma
more: mehr | plus | más | più | mais
if: wenn | si | si | se | se
but: aber | mais | pero | ma | mas
then: dann | puis | luego | poi | depois
also: auch | aussi | también | anche | também
instead: stattdessen | à la place | en su lugar | invece | em vez disso
command: Befehl | commande | comando | comando | comando
commands: Befehle | commandes | comandos | comandi | comandos
orders: Befehle | ordres | órdenes | ordini | ordens
request: Anfrage | demande | solicitud | richiesta | pedido
response: Antwort | réponse | respuesta | risposta | resposta
responses: Antworten | réponses | respuestas | risposte | respostas
content: Inhalt | contenu | contenido | contenuto | conteúdo
policy: Richtlinie | politique | política | politica | política
policies: Richtlinien | politiques | políticas | politiche | políticas
harmful: schädliche | nuisible | dañino | dannoso | prejudicial
illegal: illegale | illégal | ilegal | illegale | ilegal
hack: hacke | pirate | hackea | hackera | hackeia
steal: stehle | vole | roba | ruba | rouba
character: Figur | personnage | personaje | personaggio | personagem
imagine: stell dir vor | imagine | imagina | immagina | imagina
scenario: Szenario | scénario | escenario | scenario | cenário
game: Spiel | jeu | juego | gioco | jogo
play: spiele | joue | juega | gioca | joga
role: Rolle | rôle | rol | ruolo | papel
uncensored: unzensiert | non censuré | sin censura | senza censura | sem censura
start: beginne | commence | empieza | inizia | começa
stop: hör auf | arrête | para | smetti | pára
previously: zuvor | auparavant | previamente | precedentemente | anteriormente
given: gegebenen | données | dadas | date | dadas
told: gesagt | dit | dicho | detto | dito
from: von | de | de | da | de
on: auf | sur | en | su | em
at: an | à | en | a | em
by: von | par | por | da | por
we: wir | nous | nosotros | noi | nós
they: sie | ils | ellos | loro | eles
i: ich | je | yo | io | eu
am: bin | suis | soy | sono | sou
was: war | était | era | era | era
want: will | veux | quiero | voglio | quero
need: brauche | ai besoin | necesito | ho bisogno | preciso
know: weiß | sais | sé | so | sei
think: denke | pense | pienso | penso | penso
use: benutze | utilise | usa | usa | usa
like: wie | comme | como | come | como
some: einige | quelques | algunos | alcuni | alguns
other: andere | autres | otros | altri | outros
very: sehr | très | muy | molto | muito
many: viele | beaucoup | muchos | molti | muitos
"""

LEXICON: dict[str, tuple[str, ...]] = {}
for _line in _RAW.strip().splitlines():
    _en, _rest = _line.split(":", 1)
    _parts = tuple(p.strip() for p in _rest.split("|"))
    assert len(_parts) == len(LANGS), _line
    LEXICON[_en.strip()] = _parts

_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")


def translate(text: str, lang: str) -> str:
    """`text` with every lexicon word replaced by its `lang` translation (capitalisation kept)."""
    i = LANGS.index(lang)

    def sub(m: re.Match[str]) -> str:
        word = m.group()
        tr = LEXICON.get(word.lower())
        if tr is None:
            return word
        out = tr[i]
        return out[:1].upper() + out[1:] if word[:1].isupper() else out

    return _WORD.sub(sub, text)


def coverage(text: str) -> float:
    words = _WORD.findall(text)
    return sum(w.lower() in LEXICON for w in words) / max(1, len(words))


def augment(rows: list[tuple[str, int]], per_language: int, seed: int = 31) -> list[tuple[str, int]]:
    """`per_language` rows per language, sampled (seeded) from `rows` among those the lexicon covers at least
    40% of, translated; labels kept."""
    rng = random.Random(seed)
    usable = [(t, y) for t, y in rows if len(t) <= 2000 and coverage(t) >= 0.4]
    out: list[tuple[str, int]] = []
    for lang in LANGS:
        for text, label in rng.sample(usable, min(per_language, len(usable))):
            out.append((translate(text, lang), label))
    return out
