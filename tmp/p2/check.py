import json, tomllib, sys, re
sys.path.insert(0,'/work/main/tmp/p2')
from a import P
d=tomllib.load(open('/work/main/knowledge/faq.toml','rb'))
E={e['key']:e for e in d['entry']}
assert set(P)==set(E), set(E)^set(P)
existing=set()
for e in E.values(): existing.add(e['question']); existing.update(e['alternates'])
seen={}
terms=['申请','信息公开','答复','补正','复议','收费','不予公开','撤回','政府信息']
def bg(s):
    s=re.sub(r'[\s，。？！、,.?!：:；;“”\'"《》（）()]','',s); return {s[i:i+2] for i in range(len(s)-1)}
ref={k:[bg(x) for x in [e['question']]+e['alternates']+[e['answer']]] for k,e in E.items()}
bad=0
for k,L in P.items():
    if len(L)!=10: print('COUNT',k,len(L)); bad+=1
    for i,s in enumerate(L):
        if s in existing: print('DUP-existing',k,s); bad+=1
        if s in seen: print('DUP',k,seen[s],s); bad+=1
        seen[s]=k
        if i<6:
            t=[w for w in terms if w in s]
            if t: print('TERM',k,t,s)
            if len(s)>40: print('LONG1',k,len(s),s)
        else:
            if not 50<=len(s)<=150: print('LEN',k,len(s),s); bad+=1
print('bad',bad, 'total',sum(map(len,P.values())))
